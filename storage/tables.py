"""Imports every table module so that SQLModel.metadata is complete (for Alembic and tests)."""

from storage import assessment, items, models, points, projects  # noqa: F401
