"""Imports every table module so that SQLModel.metadata is complete (for Alembic and tests)."""

from storage import items, models, points, skills  # noqa: F401
