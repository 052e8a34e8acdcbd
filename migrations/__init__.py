"""Alembic migrations, shipped inside the package as `consultflow.migrations`."""
