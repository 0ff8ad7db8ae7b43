"""generations: a token per topic, replaced by triggers whenever a table the topic reads changes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 17:30:00.000000

The tables are listed here as they were when this migration was written (storage/generations.py
holds the current list; a table added there needs a new migration adding its triggers).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOPICS = {
    "assessment": (
        "activities",
        "activity_leaves",
        "article_authors",
        "article_publications",
        "articles",
        "assessment_additions",
        "attendances",
        "branch_totals",
        "branches",
        "items",
        "member_roles",
        "member_totals",
        "members",
        "modules",
        "point_entries",
        "project_closing_shares",
        "project_closings",
        "projects",
        "skill_levels",
        "teams",
    ),
    "totals": ("member_totals",),
}
STATUS_ONLY = {"items": "status"}

# A fresh random token, written whether or not the topic's row exists (a database emptied by
# TRUNCATE gets its row back at the next change).
SQLITE_BUMP = (
    "INSERT INTO generations (topic, token) VALUES ('{topic}', random()) "
    "ON CONFLICT (topic) DO UPDATE SET token = excluded.token;"
)
PG_FUNCTION = """
CREATE FUNCTION bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO generations (topic, token)
  VALUES (TG_ARGV[0], floor(random() * 9007199254740991)::bigint)
  ON CONFLICT (topic) DO UPDATE SET token = EXCLUDED.token;
  RETURN NULL;
END $$
"""


def _events(table: str) -> list[tuple[str, str]]:
    """(name suffix, trigger event) for SQLite, which has one event per trigger."""
    column = STATUS_ONLY.get(table)
    if column:
        return [("u", f"UPDATE OF {column}"), ("d", "DELETE")]
    return [("i", "INSERT"), ("u", "UPDATE"), ("d", "DELETE")]


def _triggers() -> list[tuple[str, str, str]]:
    """(topic, table, trigger name stem) for every watched table of every topic."""
    return [(topic, table, f"gen_{topic}_{table}") for topic, tables in TOPICS.items() for table in tables]


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for topic, table, name in _triggers():
            column = STATUS_ONLY.get(table)
            events = f"UPDATE OF {column} OR DELETE" if column else "INSERT OR UPDATE OR DELETE OR TRUNCATE"
            op.execute(
                f"CREATE TRIGGER {name} AFTER {events} ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION bump_generation('{topic}')"
            )
        return
    for topic, table, name in _triggers():
        for suffix, event in _events(table):
            bump = SQLITE_BUMP.format(topic=topic)
            op.execute(f"CREATE TRIGGER {name}_{suffix} AFTER {event} ON {table} BEGIN {bump} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for _topic, table, name in _triggers():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION bump_generation()")
    else:
        for _topic, table, name in _triggers():
            for suffix, _ in _events(table):
                op.execute(f"DROP TRIGGER {name}_{suffix}")
    op.drop_table("generations")
