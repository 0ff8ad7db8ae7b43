"""indexes that keep the activity tick and 签到 from reading every activity or approved item:
activities by report due and by the close of sign-in

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:20:00.000000

The five-minute activity tick looks up the activities starting soon and those whose report is due;
签到 without a code, those open for sign-in now. Each joined the activity's item on its status, and
SQLite started from every approved item of the workshop (~200 ms each time at a million items, in
the writer's transaction). They now read the item by primary key and the activities along these
indexes (the start's is 0013's).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_activities_reported_closes", "activities", ["reported", "closes_at"])
    op.create_index("ix_activities_closes", "activities", ["closes_at"])


def downgrade() -> None:
    op.drop_index("ix_activities_closes", table_name="activities")
    op.drop_index("ix_activities_reported_closes", table_name="activities")
