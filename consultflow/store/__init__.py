"""Persistence: SQLAlchemy models, engine setup, the unit of work and repositories.

The schema itself is made only by the Alembic migrations in `migrations/`.
"""
