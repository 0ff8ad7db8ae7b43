"""Directory sync: the members follow WeCom's address book (the fake API's department/list,
department/simplelist, user/list and user/simplelist): a dry run that changes nothing, a newcomer, a
leaver whose ledger stays, a name an admin set by CSV kept, a WeCom name followed, the fallback when
the app may not read user/list, and `python -m bot members sync` itself."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.directory import fetch_directory, sync_members
from bot.simulator.fake_api import FakeWeCom
from storage.models import Member, MemberRole
from tests.kit import CAST, BotKit, quiet_schedules
from tests.test_cli import bot_cli, write_config
from tests.test_points import add_members, approve, claim

MAPPING = {
    "甲班": {"branch": "第一党支部", "team": "甲班"},  # by name
    "4": {"branch": "第二党支部", "team": "乙班"},  # by id
    "设备维修组": {"branch": "第二党支部", "team": "维修班"},
}


def organisation(fake: FakeWeCom, *, leave: tuple[str, ...] = ("guolin",)) -> None:
    """The workshop's address book: the cast in 甲班 and 乙班, guolin gone, a newcomer in 维修组
    (under 乙班's 工段, inherited through the tree), someone in an office nobody mapped, and 王芳
    written 王芳芳 in WeCom."""
    fake.add_department(1, "某卷烟厂", parentid=0)
    fake.add_department(2, "制丝车间", parentid=1)
    fake.add_department(3, "甲班", parentid=2)
    fake.add_department(4, "乙班", parentid=2)
    fake.add_department(5, "设备维修组", parentid=4)
    fake.add_department(6, "车间办公室", parentid=2)
    for line in CAST.read_text(encoding="utf-8").splitlines()[1:]:
        userid, name, _, team = line.split(",")[:4]
        if userid in leave:
            continue
        fake.add_person(userid, "王芳芳" if userid == "wangfang" else name, [3 if team == "甲班" else 4])
    fake.add_person("tianyu", "田宇", [5])
    fake.add_person("office1", "钱敏", [6, 1])
    fake.add_person("exited", "宋江", [3], status=5)  # left the company, not yet deleted


def schedules() -> list[dict[str, Any]]:
    return [*quiet_schedules(), {"name": "directory_sync", "cron": "0 0 29 2 *", "job": "directory_sync"}]


@pytest.fixture
async def dbot(make_bot, fake: FakeWeCom) -> BotKit:
    organisation(fake)
    return await make_bot(directory={"departments": MAPPING}, schedules=schedules())


async def members(bot: BotKit) -> dict[str, tuple[str, bool, str, str, str]]:
    """userid → (name, active, branch, team, name_source)."""
    rows = await bot.query(
        lambda s: s.execute(
            text(
                "SELECT m.userid, m.name, m.active, coalesce(b.name, ''), coalesce(t.name, ''), "
                "m.name_source FROM members m LEFT JOIN branches b ON b.id = m.branch_id "
                "LEFT JOIN teams t ON t.id = m.team_id"
            )
        ).all()
    )
    return {r[0]: (r[1], bool(r[2]), r[3], r[4], r[5]) for r in rows}


async def dry_run(bot: BotKit) -> list[str]:
    directory = await fetch_directory(bot.app.config, bot.app.client)
    report = await bot.query(lambda s: sync_members(s, bot.app.config, directory, dry_run=True))
    return report.lines()


async def test_a_dry_run_reports_every_change_and_changes_nothing(dbot: BotKit):
    before = await members(dbot)
    lines = await dry_run(dbot)
    assert lines[0] == "（试运行，未做任何修改）将新增 2，将停用 1，将恢复 0，将改名 0，将调整支部/班组 0"
    assert "新增（无角色，政治面貌待导入）：田宇（tianyu） 第二党支部 维修班" in lines
    assert "新增（无角色，政治面貌待导入）：钱敏（office1）" in lines
    assert "离开企业微信通讯录，停用（积分记录保留）：郭琳（guolin）" in lines
    assert "姓名由管理员导入，保留：王芳（wangfang），企业微信里叫「王芳芳」" in lines
    assert any(
        line.startswith("部门没有对应的支部/班组") and "钱敏" in line and "车间办公室" in line
        for line in lines
    )
    assert not any("宋江" in line for line in lines)  # status 5: left the company
    assert await members(dbot) == before


async def test_the_job_adds_the_newcomer_stops_the_leaver_and_keeps_what_admins_set(dbot: BotKit):
    n = await claim(dbot, "guolin", "A04", "节假日保产顶岗")
    await approve(dbot, "wuhao", n)
    entries = await dbot.query(lambda s: s.execute(text("SELECT count(*) FROM point_entries")).scalar())
    result = await dbot.app.scheduler.run_now("directory_sync")
    assert result.status == "done", result
    assert result.detail == "已新增 2，已停用 1，已恢复 0，已改名 0，已调整支部/班组 0"
    after = await members(dbot)
    assert after["tianyu"] == ("田宇", True, "第二党支部", "维修班", "wecom")
    assert after["office1"] == ("钱敏", True, "", "", "wecom")
    assert after["guolin"][:2] == ("郭琳", False)
    assert after["wangfang"] == ("王芳", True, "第一党支部", "甲班", "csv")  # the admin's name stays
    roles = await dbot.query(
        lambda s: s.execute(
            select(MemberRole.role)
            .join(Member, Member.id == MemberRole.member_id)
            .where(Member.userid == "tianyu")
        ).all()
    )
    assert roles == []
    status = await dbot.query(
        lambda s: s.execute(select(Member.political_status).where(Member.userid == "tianyu")).scalar_one()
    )
    assert status == "群众"
    # The leaver's ledger stays; they are now a stranger to the bot, the newcomer is a member.
    assert (
        await dbot.query(lambda s: s.execute(text("SELECT count(*) FROM point_entries")).scalar()) == entries
    )
    assert "还不是「先锋」的登记成员" in await dbot.say("guolin", "我的")
    assert "田宇" in await dbot.say("tianyu", "我的")
    # The admins hear what changed.
    await dbot.drain()
    [notice] = [t for t in dbot.texts_to("liqiang") if "通讯录同步" in t]
    assert "田宇（tianyu）" in notice and "郭琳（guolin）" in notice
    # Nothing changes the second time, and nobody is told.
    again = await dbot.app.scheduler.run_now("directory_sync")
    assert again.detail == "已新增 0，已停用 0，已恢复 0，已改名 0，已调整支部/班组 0"


async def test_roles_and_political_status_survive_a_move_and_a_name_from_wecom_follows(
    dbot: BotKit, fake: FakeWeCom
):
    assert (await dbot.app.scheduler.run_now("directory_sync")).status == "done"
    fake.add_person("zhangwei", "张伟", [4])  # the secretary moves to 乙班
    fake.add_person("tianyu", "田雨", [5])  # the newcomer's name corrected in WeCom
    fake.add_person("guolin", "郭琳", [4])  # back
    result = await dbot.app.scheduler.run_now("directory_sync")
    assert result.status == "done", result
    after = await members(dbot)
    assert after["tianyu"][0] == "田雨"
    assert after["guolin"][1] is True
    assert after["zhangwei"][2:4] == ("第二党支部", "乙班")
    still = await dbot.query(
        lambda s: s.execute(
            select(Member.political_status, MemberRole.role)
            .join(MemberRole, MemberRole.member_id == Member.id)
            .where(Member.userid == "zhangwei")
        ).all()
    )
    assert [tuple(r) for r in still] == [("党员", "secretary")]
    # Once an admin's CSV names the newcomer, WeCom's name no longer wins.
    await add_members(dbot, "tianyu,田宇（维修）,第二党支部,维修班,,,预备党员,")
    fake.add_person("tianyu", "田雨雨", [5])
    report = await dry_run(dbot)
    assert "姓名由管理员导入，保留：田宇（维修）（tianyu），企业微信里叫「田雨雨」" in report
    assert report[0].endswith("将改名 0，将调整支部/班组 0")


async def test_an_app_without_the_right_to_user_list_falls_back_to_simplelist(dbot: BotKit, fake: FakeWeCom):
    fake.fail_always(60011, api="user/list")
    fake.fail_always(48002, api="department/list")
    lines = await dry_run(dbot)
    # simplelist gives no account status: the account that left the company counts until deleted.
    assert lines[0].endswith("将新增 3，将停用 1，将恢复 0，将改名 0，将调整支部/班组 0")
    assert "新增（无角色，政治面貌待导入）：宋江（exited）" in lines  # 甲班 is mapped by name: unknown now
    assert any(
        "user/list 无权限（60011），改用 user/simplelist" in line and "账号状态" in line for line in lines
    )
    assert any("department/list 无权限（48002）" in line for line in lines)
    # Without names for departments only the mapping by id works: 甲班 and 设备维修组 are unknown now.
    assert "新增（无角色，政治面貌待导入）：田宇（tianyu） 第二党支部 乙班" in lines  # inherits 4
    assert fake.calls("user/simplelist") and fake.calls("department/simplelist")


async def test_other_failures_change_nothing(dbot: BotKit, fake: FakeWeCom):
    before = await members(dbot)
    fake.fail_always(-1, api="user/list")
    result = await dbot.app.scheduler.run_now("directory_sync")
    assert result.status == "failed" and "-1" in result.detail
    assert await members(dbot) == before


async def test_an_empty_address_book_stops_nobody(make_bot, fake: FakeWeCom):
    fake.add_department(1, "某卷烟厂", parentid=0)
    bot = await make_bot(schedules=schedules())
    before = await members(bot)
    result = await bot.app.scheduler.run_now("directory_sync")
    assert result.status == "failed" and "一个人也没有读到" in result.detail
    assert await members(bot) == before


async def test_the_command_line_dry_run_and_real_run(tmp_path: Path, database_url: str, fake: FakeWeCom):
    organisation(fake)
    assert fake.base_url
    cfg = write_config(
        tmp_path / "config.yaml", database_url, fake.base_url, directory={"departments": MAPPING}
    )
    assert (await asyncio.to_thread(bot_cli, "members", "import", str(CAST), config=cfg)).returncode == 0
    out = await asyncio.to_thread(bot_cli, "members", "sync", "--dry-run", config=cfg)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("（试运行，未做任何修改）将新增 2，将停用 1")
    listing = await asyncio.to_thread(bot_cli, "members", "list", config=cfg)
    assert "tianyu" not in listing.stdout
    out = await asyncio.to_thread(bot_cli, "members", "sync", config=cfg)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("已新增 2，已停用 1")
    listing = await asyncio.to_thread(bot_cli, "members", "list", config=cfg)
    assert "tianyu\t田宇\t第二党支部\t维修班" in listing.stdout
    fake.fail_always(-1, api="department/list")
    out = await asyncio.to_thread(bot_cli, "members", "sync", config=cfg)
    assert out.returncode == 1 and "nothing changed" in out.stderr


async def test_the_simulators_address_book_and_the_shipped_mapping(database_url: str, http):
    """Local mode: the simulator's fake API (under /sim) has the cast and one newcomer; the shipped
    `directory.departments` maps every department it has."""
    from tests.simkit import start_local, stop_local

    local = await start_local(database_url, http)
    try:
        app = local.app
        directory = await fetch_directory(app.config, app.client)
        report = await app.db.run(lambda s: sync_members(s, app.config, directory, dry_run=True))
        lines = report.lines()
        assert lines[0] == "（试运行，未做任何修改）将新增 1，将停用 0，将恢复 0，将改名 0，将调整支部/班组 0"
        assert "新增（无角色，政治面貌待导入）：田宇（tianyu） 第二党支部" in lines
        assert not any(line.startswith("部门没有对应") for line in lines)
        assert "还不是「先锋」的登记成员" in await local.say("tianyu", "我的")
        await app.db.run(lambda s: sync_members(s, app.config, directory))
        assert "田宇（群众）" in await local.say("tianyu", "我的")
    finally:
        await stop_local(local)
