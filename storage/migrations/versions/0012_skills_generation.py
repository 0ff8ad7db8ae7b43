"""generations: a `skills` topic for the 多能工 matrix, and team names in the `totals` topic

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:40:00.000000

The triggers are those of 0011 (a fresh random token in the topic's row of `generations`, in the same
transaction as the change): `skills` on the tables a team's or branch's matrix is read from, and
`totals` now also on `teams` (the team sums of 排行 班组 are kept with their names), as they were when
this migration was written. PostgreSQL reuses 0011's `bump_generation` function.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = (("skills", "members"), ("skills", "skill_levels"), ("skills", "teams"), ("totals", "teams"))
SQLITE_BUMP = (
    "INSERT INTO generations (topic, token) VALUES ('{topic}', random()) "
    "ON CONFLICT (topic) DO UPDATE SET token = excluded.token;"
)
SQLITE_EVENTS = (("i", "INSERT"), ("u", "UPDATE"), ("d", "DELETE"))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for topic, table in TRIGGERS:
        name = f"gen_{topic}_{table}"
        if postgres:
            op.execute(
                f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION bump_generation('{topic}')"
            )
            continue
        bump = SQLITE_BUMP.format(topic=topic)
        for suffix, event in SQLITE_EVENTS:
            op.execute(f"CREATE TRIGGER {name}_{suffix} AFTER {event} ON {table} BEGIN {bump} END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for topic, table in TRIGGERS:
        name = f"gen_{topic}_{table}"
        if postgres:
            op.execute(f"DROP TRIGGER {name} ON {table}")
        else:
            for suffix, _ in SQLITE_EVENTS:
                op.execute(f"DROP TRIGGER {name}_{suffix}")
