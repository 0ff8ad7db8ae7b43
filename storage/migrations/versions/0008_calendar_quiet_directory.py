"""Members' own quiet hours (免打扰) and where a member's name came from (CSV import or directory sync)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("quiet_hours", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        # Every member so far came from an admin's CSV import.
        batch.add_column(
            sa.Column("name_source", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="csv")
        )


def downgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.drop_column("name_source")
        batch.drop_column("quiet_hours")
