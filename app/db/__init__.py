"""PostgreSQL storage: models, sessions and migrations."""
