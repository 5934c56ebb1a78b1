"""Alembic environment and revisions (a package so the wheel ships them)."""
