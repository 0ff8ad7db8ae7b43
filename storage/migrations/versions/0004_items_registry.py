"""items: owner, title, state and decision move from submissions to items

Every kind of item (尽责, 创新, 加分 now; 投稿, 带教, 结题 later) is decided through one registry, so
what a decision needs — owner, branch, title, state, who decided and why — lives on `items`, and
`submissions` keeps only the points side (indicator, day, points). Existing rows are copied over.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
# (column, type, nullable, server default for existing rows)
_MOVED = [
    ("member_id", sa.Integer(), True, None),
    ("submitted_by", sa.Integer(), True, None),
    ("branch_id", sa.Integer(), True, None),
    ("title", _TEXT(), False, ""),
    ("status", _TEXT(), False, "pending"),
    ("decided_by", sa.Integer(), True, None),
    ("decided_at", storage.types.UTCDateTime(timezone=True), True, None),
    ("reason", _TEXT(), False, ""),
    ("voided_by", sa.Integer(), True, None),
    ("voided_at", storage.types.UTCDateTime(timezone=True), True, None),
    ("void_reason", _TEXT(), False, ""),
]
_REFERENCES = {
    "member_id": "members",
    "submitted_by": "members",
    "branch_id": "branches",
    "decided_by": "members",
    "voided_by": "members",
}


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        for name, type_, nullable, default in _MOVED:
            batch_op.add_column(sa.Column(name, type_, nullable=nullable, server_default=default))
        for name, table in _REFERENCES.items():
            batch_op.create_foreign_key(f"fk_items_{name}_{table}", table, [name], ["id"])
        batch_op.create_index("ix_items_member_status", ["member_id", "status", "created_at"], unique=False)
        batch_op.create_index("ix_items_status_created", ["status", "created_at"], unique=False)

    names = [name for name, *_ in _MOVED]
    assignments = ", ".join(f"{n} = (SELECT s.{n} FROM submissions s WHERE s.id = items.id)" for n in names)
    op.execute(f"UPDATE items SET {assignments} WHERE id IN (SELECT id FROM submissions)")
    # Rows only needed a default while the copy ran.
    with op.batch_alter_table("items", schema=None) as batch_op:
        for name, type_, nullable, default in _MOVED:
            if default is not None:
                batch_op.alter_column(
                    name, existing_type=type_, existing_nullable=nullable, server_default=None
                )

    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_member_status")
        batch_op.drop_index("ix_submissions_status_created")
        for name in [*names, "kind", "created_at"]:
            batch_op.drop_column(name)
        batch_op.create_index("ix_submissions_indicator_day", ["indicator", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_submissions_indicator_day")
        batch_op.add_column(sa.Column("kind", _TEXT(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=True))
        for name, type_, _nullable, default in _MOVED:
            batch_op.add_column(sa.Column(name, type_, nullable=True, server_default=default))
    names = ["kind", "created_at", *(name for name, *_ in _MOVED)]
    assignments = ", ".join(f"{n} = (SELECT i.{n} FROM items i WHERE i.id = submissions.id)" for n in names)
    op.execute(f"UPDATE submissions SET {assignments}")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_submissions_member_status", ["member_id", "status", "created_at"], unique=False
        )
        batch_op.create_index("ix_submissions_status_created", ["status", "created_at"], unique=False)
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_status_created")
        batch_op.drop_index("ix_items_member_status")
        for name, table in _REFERENCES.items():
            batch_op.drop_constraint(f"fk_items_{name}_{table}", type_="foreignkey")
        for name, *_ in _MOVED:
            batch_op.drop_column(name)
