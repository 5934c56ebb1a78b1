"""Value types and validators that know nothing about HTTP or the database."""
