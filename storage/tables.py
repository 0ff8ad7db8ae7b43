"""Imports every table module so that SQLModel.metadata is complete (for Alembic and tests)."""

from storage import activities, items, models, points, publicity, skills  # noqa: F401
