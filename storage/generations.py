"""Generations: a token per topic that the database itself replaces whenever a table the topic is
computed from changes, so that a computed result can be kept until its inputs change.

A topic (`ASSESSMENT`, the quarterly 党建考评; `TOTALS`, the members' period totals that places and
team sums are counted from; `SKILLS`, the 多能工 matrix of a team or branch) names the tables it reads
in `WATCHED`. Migrations 0011 and 0012 put a trigger on each of them that writes a fresh random
token into the topic's row of `generations`, in the same transaction as the change: on SQLite after
every inserted, updated or deleted row, on PostgreSQL once per statement. Because the database does
it, nothing escapes it: ORM flushes, Core statements, the command line, a second bot process, an
administrator's psql.

A reader takes the token *before* it reads the data (`token`), and may reuse what it computed under
the same token. Three properties make that exact:

- a change and its new token commit together, so whoever sees the change sees the new token;
- the token is random, not a counter, so a transaction that rolled back cannot hand its token to a
  later one with different data;
- data read after the token is at least as new as the token, so a result kept under a token is
  never older than what that token promises.

`items` is watched only for a change of `status` (and deletion): claims insert items all day, and a
pending item counts in no topic until it is decided, which updates its status.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy import BigInteger, Column, bindparam, select
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from storage.prebuilt import Prebuilt

T = TypeVar("T")


class Generation(SQLModel, table=True):
    """The current token of one topic; written by triggers only (see the module docstring)."""

    __tablename__ = "generations"
    topic: str = Field(primary_key=True)
    token: int = Field(sa_column=Column(BigInteger, nullable=False))


ASSESSMENT = "assessment"
TOTALS = "totals"
SKILLS = "skills"

# Topic → the tables its results are computed from. Migrations 0011 (assessment, totals) and 0012
# (skills, and teams for totals) create the triggers from this list as it was then; a table added
# here needs a migration that adds its triggers. tests/test_demo.py checks, on the demo's history,
# that the 党建考评 and the matrix read no other table.
WATCHED: dict[str, tuple[str, ...]] = {
    ASSESSMENT: (
        "activities",
        "activity_leaves",
        "article_authors",
        "article_publications",
        "articles",
        "assessment_additions",
        "attendances",
        "branch_totals",
        "branches",
        "items",  # status changes and deletions only
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
    # Places behind 排行's arrows and 我的's rank, team sums with their names (storage/rankings.py).
    TOTALS: ("member_totals", "teams"),
    SKILLS: ("members", "skill_levels", "teams"),  # a team's or branch's matrix (storage/skills.py)
}
STATUS_ONLY = {"items": "status"}  # tables watched for a change of one column only

_TOKEN = Prebuilt(
    select(Generation.__table__.c.token).where(  # type: ignore[attr-defined]
        Generation.__table__.c.topic == bindparam("topic")  # type: ignore[attr-defined]
    )
)


def token(session: Session, topic: str) -> int | None:
    """The topic's current token; None when its row is missing (no watched table has changed since the
    database was created or emptied), in which case nothing may be reused."""
    found = _TOKEN.rows(session, {"topic": topic})
    return int(found[0][0]) if found else None


class Kept(Generic[T]):
    """Results computed from a topic's tables, kept under the token they were read at: the `size` most
    recently used, shared by the writer and the reader threads. Tokens are random, so one `Kept`
    serves every connection and every database of the process: two databases never share a token."""

    def __init__(self, topic: str, size: int):
        self.topic = topic
        self.size = size
        self._kept: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, key: Callable[[], Hashable], compute: Callable[[], T]) -> T:
        """What `compute()` returns for `key()` now: kept from an earlier call under the current token,
        or computed (and kept). Without a token (see `token`), computed every time."""
        made = token(session, self.topic)  # taken before any of the data is read
        if made is None:
            return compute()
        full = (made, key())
        with self._lock:
            if full in self._kept:
                self._kept.move_to_end(full)
                return self._kept[full]
        value = compute()
        with self._lock:
            self._kept[full] = value
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return value
