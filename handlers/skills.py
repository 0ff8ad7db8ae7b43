"""以技带岗 and 多能工: the skill levels people hold in each post. Today that is the levels imported
from a CSV (`python -m bot skills import FILE`, and the demo's levels in local mode); the catalogue of
posts, targets and training points is the `skills` section (`handlers/skills_config.py`).
"""

from __future__ import annotations

import argparse

from sqlalchemy.orm import Session

from bot.cli import import_csv, practice_command
from bot.config import Config
from bot.members import ImportReport, import_skills
from bot.simulator.local import demo_file
from handlers.skills_config import SkillsConfig


def import_levels(session: Session, config: Config, text: str, actor: str = "cli") -> ImportReport:
    """Import `userid,skill,level` rows, skills named by post name or alias."""
    return import_skills(session, text, SkillsConfig.of(config).skill, actor=actor)


@practice_command("skills", "import", help="import skill levels from CSV", arguments=((("file",), {}),))
def skills_import(args: argparse.Namespace, config: Config) -> int:
    return import_csv(args, config, lambda session, text: import_levels(session, config, text))


@demo_file("skills.csv")
def demo_levels(session: Session, config: Config, text: str) -> ImportReport:
    """The demo cast's levels, in local mode."""
    return import_levels(session, config, text, actor="local-mode")
