"""Imports every table module so that SQLModel.metadata is complete (for Alembic and tests)."""

from storage import models, points  # noqa: F401
