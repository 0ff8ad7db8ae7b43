"""training: three-step training steps, rotation plans, the history of skill levels, each member's post

`training_steps` holds what a coach recorded for a trainee (the item `#N` of the same id says whether
the trainee confirmed it); `training_plans` the rotation plans (轮训), open until the trainee passes
step 3; `skill_level_changes` every change of a level (import, 定级, a passed
step 3); `members.post` the member's own post, from the optional `post` column of the member CSV.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("post", _TEXT(), nullable=False, server_default=""))
    op.create_table(
        "training_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=False),
        sa.Column("coach_id", sa.Integer(), nullable=False),
        sa.Column("skill", _TEXT(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("reminded_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["coach_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["id"], ["items.id"]),
        sa.ForeignKeyConstraint(["trainee_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("training_steps", schema=None) as batch_op:
        batch_op.create_index("ix_training_steps_trainee_skill", ["trainee_id", "skill", "id"], unique=False)
    op.create_table(
        "training_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trainee_id", sa.Integer(), nullable=False),
        sa.Column("coach_id", sa.Integer(), nullable=True),
        sa.Column("skill", _TEXT(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("cycle_days", sa.Integer(), nullable=False),
        sa.Column("reminded", _TEXT(), nullable=False),
        sa.ForeignKeyConstraint(["coach_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["id"], ["items.id"]),
        sa.ForeignKeyConstraint(["trainee_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("training_plans", schema=None) as batch_op:
        batch_op.create_index("ix_training_plans_trainee_skill", ["trainee_id", "skill"], unique=False)
    op.create_table(
        "skill_level_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("skill", _TEXT(), nullable=False),
        sa.Column("from_level", _TEXT(), nullable=False),
        sa.Column("to_level", _TEXT(), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("source", _TEXT(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("coach_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["by_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["coach_id"], ["members.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("skill_level_changes", schema=None) as batch_op:
        batch_op.create_index("ix_skill_level_changes_member", ["member_id", "skill", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("skill_level_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_skill_level_changes_member")
    op.drop_table("skill_level_changes")
    with op.batch_alter_table("training_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_training_plans_trainee_skill")
    op.drop_table("training_plans")
    with op.batch_alter_table("training_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_training_steps_trainee_skill")
    op.drop_table("training_steps")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("post")
