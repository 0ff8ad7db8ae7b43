"""Imports every table module so that SQLModel.metadata is complete (for Alembic and tests)."""

from storage import (  # noqa: F401
    activities,
    assessment,
    generations,
    items,
    models,
    points,
    projects,
    publicity,
    skills,
)
