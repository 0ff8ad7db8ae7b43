"""Who may run what: the role × command table in docs/security.md is checked both ways.

1. The table is what the commands declare (`roles=`, `party_only=`): a command added or changed
   without the doc fails here. `python -m tests.test_security` prints the table to paste.
2. Through the front door, every persona (a stranger, 群众, a 党员 with no role, and one member for
   each role) types every command and clicks its button: refused exactly where the table says ✗.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from bot.members import STRANGER, import_members
from bot.router import Command, Router
from storage.vocabulary import Role
from tests.kit import ROOT, BotKit

DOC = ROOT / "docs" / "security.md"
ALLOWED, REFUSED = "✓", "✗"


@dataclass(frozen=True)
class Persona:
    label: str  # the column heading in docs/security.md
    userid: str
    political_status: str = "党员"
    role: str = ""  # '' for none; a stranger is not in the member list at all
    member: bool = True


PERSONAS = (
    Persona("陌生人", "sec_stranger", member=False),
    Persona("群众", "sec_masses", political_status="群众"),
    Persona("党员", "sec_party"),
    *(Persona(role.label, f"sec_{role.value}", role=role.value) for role in Role if role is not Role.MEMBER),
)


def declared(cmd: Command, p: Persona) -> str:
    """What the command declares for this persona (the router's own rule, as the doc states it)."""
    if not p.member:
        return REFUSED
    roles = cmd.roles() if callable(cmd.roles) else cmd.roles
    if roles is not None and p.role not in roles:
        return REFUSED
    if cmd.party_only and p.political_status not in ("党员", "预备党员"):
        return REFUSED
    return ALLOWED


def render_table(router: Router) -> str:
    head = "| 命令 | 按钮代码 | " + " | ".join(p.label for p in PERSONAS) + " |"
    rule = "|" + "---|" * (len(PERSONAS) + 2)
    rows = [
        f"| {c.name} | `{c.code}` | " + " | ".join(declared(c, p) for p in PERSONAS) + " |"
        for c in router.commands
    ]
    return "\n".join([head, rule, *rows])


def doc_table() -> dict[str, dict[str, str]]:
    """{command: {persona label: ✓/✗}} from the table in docs/security.md."""
    text = DOC.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.startswith("| 命令 |") or re.match(r"\| \S+ \| `", ln)]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    table: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = dict(zip(header[2:], cells[2:], strict=True))
    return table


def router() -> Router:
    from handlers import build_router

    return build_router()


def test_the_doc_table_is_what_the_commands_declare():
    r = router()
    assert render_table(r) in DOC.read_text(encoding="utf-8"), (
        "docs/security.md's role table is out of date; paste the output of `python -m tests.test_security`"
    )
    assert set(doc_table()) == {c.name for c in r.commands}


def refused_by_role(reply: str, cmd: Command, p: Persona) -> bool:
    if not p.member:
        return reply == STRANGER
    return reply.startswith(f"「{cmd.name}」仅限")


async def test_every_persona_typing_and_clicking_every_command_matches_the_table(bot: BotKit):
    rows = "userid,name,branch,team,party_group,module,political_status,roles,post\n" + "".join(
        f"{p.userid},测{i},第一党支部,甲班,第一党小组,工艺质量,{p.political_status},{p.role},\n"
        for i, p in enumerate(PERSONAS)
        if p.member
    )
    report = await bot.query(lambda s: import_members(s, rows, actor="test"))
    assert not report.problems
    table = doc_table()
    mismatches: list[str] = []
    checked = 0
    for cmd in bot.app.router.commands:
        for p in PERSONAS:
            expected = table[cmd.name][p.label]
            typed = await bot.say(p.userid, cmd.name)
            clicked = await bot.click(p.userid, f"{cmd.code}:")
            click_text = clicked.text if clicked is not None and clicked.text else ""
            for how, reply in (("typed", typed), ("clicked", click_text)):
                got = REFUSED if refused_by_role(reply, cmd, p) else ALLOWED
                checked += 1
                if got != expected:
                    said = reply[:60]
                    mismatches.append(f"{cmd.name} {how} by {p.label}: {got}, table says {expected}: {said}")
            await bot.say(p.userid, "取消")  # leave no dialogue behind for the next command
    assert not mismatches, "\n".join(mismatches)
    assert checked == 2 * len(PERSONAS) * len(bot.app.router.commands)
    # Every column refuses something and allows something, except the stranger, refused everything.
    for p in PERSONAS:
        column = {table[c][p.label] for c in table}
        assert column == ({REFUSED} if not p.member else {ALLOWED, REFUSED}), p.label
    # 帮助 lists exactly the commands the table allows each member.
    for p in PERSONAS:
        if p.member:
            listed = re.findall(r"^· (.+?)：", await bot.say(p.userid, "帮助"), flags=re.M)
            assert listed == [c for c in table if table[c][p.label] == ALLOWED], p.label


@pytest.mark.parametrize("key", ["no_such_code:1", "approve:../../etc", ":", "help:" + "x" * 300])
async def test_forged_button_keys_are_refused_or_ignored(bot: BotKit, key: str):
    """A click is an EventKey the client sends: forged ones meet the same checks as typed text."""
    reply = await bot.click("liuyang", key)  # 群众, no role
    text = reply.text if reply is not None and reply.text else ""
    if key.startswith("approve:"):
        assert text.startswith("「通过」仅限")
    elif key.startswith("help:"):
        assert text and "仅限" not in text
    else:
        assert text.startswith("这个按钮已失效")


if __name__ == "__main__":
    print(render_table(router()))
