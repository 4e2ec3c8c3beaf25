"""Persistence of the canonical model (SQLAlchemy 2, Alembic migrations); SQLite embedded, PostgreSQL in production."""
