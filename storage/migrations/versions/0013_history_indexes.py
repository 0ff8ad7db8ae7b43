"""indexes that keep 我的 from reading all of the workshop's history: activities by start, projects by
leader, a module's articles by first acceptance

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 00:10:00.000000

我的 lists the member's activities this quarter, the projects they lead and (for a correspondent) how
many of their module's articles were accepted this month. Without these indexes SQLite read every
approved item of the workshop (of every kind) to find this quarter's activities, every project to find
the member's, and every article with its item: all grow with each year of use.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_activities_starts_at", "activities", ["starts_at"])
    op.create_index("ix_projects_leader_id", "projects", ["leader_id"])
    op.create_index("ix_articles_module_accepted", "articles", ["module", "accepted_at"])


def downgrade() -> None:
    op.drop_index("ix_articles_module_accepted", table_name="articles")
    op.drop_index("ix_projects_leader_id", table_name="projects")
    op.drop_index("ix_activities_starts_at", table_name="activities")
