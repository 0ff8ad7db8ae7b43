"""The simulator's WeCom address book (通讯录): the demo cast in their teams' departments, plus one
newcomer the bot does not know yet, so that `python -m bot members sync --dry-run` in local mode shows
what a sync does. The shipped `directory.departments` in config.yaml maps these departments."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from bot.simulator.fake_api import FakeWeCom

CAST = Path(__file__).resolve().parent / "cast.csv"
DEPARTMENTS = [  # (id, name, parent): a cigarette factory, its 制丝 workshop and the workshop's teams
    (1, "某卷烟厂", 0),
    (2, "制丝车间", 1),
    (3, "甲班", 2),
    (4, "乙班", 2),
    (5, "设备维修组", 2),
]
NEWCOMER = ("tianyu", "田宇", 5)


def fill(fake: FakeWeCom, cast: str | None = None) -> None:
    for dept_id, name, parent in DEPARTMENTS:
        fake.add_department(dept_id, name, parentid=parent)
    by_name = {name: dept_id for dept_id, name, _ in DEPARTMENTS}
    for row in csv.DictReader(io.StringIO(cast if cast is not None else CAST.read_text(encoding="utf-8"))):
        fake.add_person(row["userid"], row["name"], [by_name.get(row["team"], 2)])
    userid, name, dept = NEWCOMER
    fake.add_person(userid, name, [dept])
