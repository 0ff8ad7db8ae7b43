"""Imports every table module so that SQLModel.metadata is complete (for Alembic and tests)."""

from storage import activities, assessment, items, models, points, projects, publicity, skills  # noqa: F401
