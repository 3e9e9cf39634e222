"""A minimal service package with Alembic migrations, for kit.migrate's tests."""
