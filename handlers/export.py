"""导出: a quarter's (or any period's) workbook as .xlsx, one sheet per registered builder.

Each practice adds its sheets with `@workbook_sheet(order)`; the points sheets (汇总, 明细, 创新成果)
and the 待审与驳回 sheet of every item kind are here. `build_workbook` is shared by the 导出 command
(secretaries: their branch; committee: all) and by `python -m bot export --period 2026Q4 --out FILE`.
The rows come from `storage.export`; this module ranks them and lays out the sheets.
"""

from __future__ import annotations

import argparse
import io
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from bot.cli import practice_command, with_database
from bot.config import Config
from bot.context import Context, Sender
from bot.replies import File, Reply, Text
from bot.router import Router
from handlers.items import kind_of
from handlers.periods import Period, looks_like_period, parse_period, period_of
from handlers.points_config import PointsConfig
from handlers.rankings import category_name, competition_ranks
from storage import export as stored
from storage import items as item_store
from storage import people
from storage.points import INNOVATION, TOTAL
from storage.vocabulary import PARTY_STATUSES as PARTY
from storage.vocabulary import ItemState

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

router = Router("export")

HEADER_FILL = "DDEBF7"


def _points(x100: int | None) -> float | int:
    value = (x100 or 0) / 100
    return int(value) if value == int(value) else value


def _width(value: Any) -> int:
    text = str(value if value is not None else "")
    longest = max(
        (
            sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
            for line in text.splitlines() or [""]
        ),
        default=0,
    )
    return longest


def _sheet(
    wb: Workbook, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]], *, first: bool = False
) -> Worksheet:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws: Worksheet = wb.active if first else wb.create_sheet()  # type: ignore[assignment]
    ws.title = title
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.alignment = Alignment(horizontal="center", vertical="center")
    widths = [_width(h) for h in header]
    for row in rows:
        ws.append(list(row))
        widths = [max(w, _width(v)) for w, v in zip(widths, row, strict=False)]
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = min(60, max(8, w + 2))
    ws.freeze_panes = "A2"
    return ws


def _local(at: datetime | None, config: Config) -> str:
    return at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if at else ""


@dataclass(frozen=True)
class Sheet:
    """One sheet of the quarter workbook: its title, header and rows (values openpyxl can write)."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]]


@dataclass(frozen=True)
class Scope:
    """What a workbook covers: the period and its bounds in time, and one branch or (None) all."""

    period: Period
    branch_id: int | None
    lo: datetime
    hi: datetime


SheetBuilder = Callable[[Session, Config, Scope], Sheet]
SHEETS: list[tuple[int, SheetBuilder]] = []


def workbook_sheet(order: int) -> Callable[[SheetBuilder], SheetBuilder]:
    """Register a sheet of the workbook (lower `order` first); each practice adds its own."""

    def register(builder: SheetBuilder) -> SheetBuilder:
        SHEETS.append((order, builder))
        SHEETS.sort(key=lambda s: s[0])
        return builder

    return register


def build_workbook(session: Session, config: Config, period: Period, branch_id: int | None = None) -> bytes:
    """The workbook for `period`, for one branch or (None) the whole 党总支: every registered sheet."""
    lo, hi = period.bounds(config.tz)
    scope = Scope(period, branch_id, lo, hi)
    # Imported here, not with the module: openpyxl takes ~0.1 s to import, which every start of the
    # bot paid for a command used a few times a quarter.
    from openpyxl import Workbook

    wb = Workbook()
    for i, (_, builder) in enumerate(SHEETS):
        sheet = builder(session, config, scope)
        _sheet(wb, sheet.title, sheet.header, sheet.rows, first=i == 0)
    for ws in wb.worksheets:
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                if cell.is_date:
                    cell.number_format = "yyyy-mm-dd"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@workbook_sheet(10)
def summary_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """汇总: every party member (and anyone with points) × categories, totals and ranks."""
    period, branch_id = scope.period, scope.branch_id
    groups = [
        *PointsConfig.of(config).categories,
        *([PointsConfig.of(config).deductions] if PointsConfig.of(config).deductions else []),
    ]
    codes = [c.code for c in groups]
    people = stored.active_members(session, branch_id)
    totals = stored.period_totals(session, period.key, branch_id)
    rows = [p for p in people if p.political_status in PARTY or p.member_id in totals]
    rows.sort(key=lambda p: (-totals.get(p.member_id, {}).get(TOTAL, 0), p.member_id))
    ranks = competition_ranks([totals.get(p.member_id, {}).get(TOTAL, 0) for p in rows])
    by_branch: dict[str | None, list[int]] = {}
    for p in rows:
        by_branch.setdefault(p.branch, []).append(totals.get(p.member_id, {}).get(TOTAL, 0))
    branch_rank = {
        name: dict(zip(values, competition_ranks(values), strict=True)) for name, values in by_branch.items()
    }
    summary = []
    for p, rank in zip(rows, ranks, strict=True):
        mine = totals.get(p.member_id, {})
        summary.append(
            [
                rank,
                p.name,
                p.userid,
                p.branch or "",
                p.team or "",
                p.political_status,
                *(_points(mine.get(c)) for c in codes),
                _points(mine.get(TOTAL)),
                branch_rank[p.branch][mine.get(TOTAL, 0)],
                _points(mine.get(INNOVATION)),
            ]
        )
    return Sheet(
        "汇总",
        [
            "排名",
            "姓名",
            "账号",
            "支部",
            "班组",
            "政治面貌",
            *(f"{c.code} {c.name}" for c in groups),
            "合计",
            "支部内排名",
            "创新积分",
        ],
        summary,
    )


@workbook_sheet(20)
def ledger_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """明细: every ledger line dated in the period."""
    period, branch_id = scope.period, scope.branch_id
    entries = stored.ledger_lines(session, period.start, period.end, branch_id)
    return Sheet(
        "明细",
        [
            "流水号",
            "日期",
            "记账时间",
            "姓名",
            "支部",
            "类别",
            "指标",
            "分值",
            "类型",
            "冲正流水号",
            "事项编号",
            "审核人",
            "说明",
        ],
        (
            [
                x.id,
                x.day,
                _local(x.at, config),
                x.member or "（支部）",
                x.branch or "",
                category_name(config, x.category),
                x.indicator,
                _points(x.points_x100),
                "冲正" if x.kind == "reversal" else "记分",
                x.reverses_entry_id or "",
                f"#{x.item_id}" if x.item_id else "",
                x.approver or "",
                x.note,
            ]
            for x in entries
        ),
    )


@workbook_sheet(30)
def innovation_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """创新成果: innovation claims made in the period, with each member's share."""
    lo, hi, branch_id = scope.lo, scope.hi, scope.branch_id
    claims = stored.innovation_claims(session, lo, hi, branch_id)
    shares = stored.innovation_shares(session, [c.id for c in claims])
    return Sheet(
        "创新成果",
        [
            "编号",
            "类型",
            "名称",
            "级别",
            "等次",
            "成果分值",
            "组长",
            "成员及本次得分",
            "本次计分",
            "状态",
            "申报时间",
            "说明",
        ],
        (
            [
                f"#{c.id}",
                c.type,
                c.name,
                c.level,
                c.grade,
                _points(c.points_x100),
                c.leader,
                "、".join(f"{m.name}（{m.role}）{_points(m.paid_x100)}" for m in shares.get(c.id, [])),
                _points(c.claimed_x100),
                ItemState(c.status).label,
                _local(c.created_at, config),
                c.description,
            ]
            for c in claims
        ),
    )


@workbook_sheet(90)
def open_items_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """待审与驳回: what still waits, and what was rejected in the period, of every kind."""
    lo, hi, branch_id = scope.lo, scope.hi, scope.branch_id
    open_items = item_store.open_and_rejected(session, lo, hi, branch_id)
    return Sheet(
        "待审与驳回",
        [
            "编号",
            "状态",
            "类型",
            "申报人",
            "支部",
            "内容",
            "分值",
            "提交时间",
            "审核人",
            "审核时间",
            "驳回理由",
            "说明",
        ],
        (
            [
                f"#{x.id}",
                ItemState(x.status).label,
                x.kind,
                name,
                branch,
                x.title,
                kind_of(x).value(session, x),
                _local(x.created_at, config),
                who,
                _local(x.decided_at, config),
                x.reason,
                kind_of(x).description(session, x),
            ]
            for x, name, branch, who in open_items
        ),
    )


def workbook_name(period: Period, branch: str = "") -> str:
    return f"{period.key}积分{'-' + branch if branch else ''}.xlsx"


@router.command("导出", code="export", aliases=("导出积分", "积分表"), roles={"secretary", "committee"})
def export(ctx: Context, member: Sender, args: str) -> list[Reply] | str:
    """导出积分表（Excel）：导出 [本季度|上季度|2026Q3|2026-11]；书记导出本支部，党总支导出全部。"""
    word = args.split()[0] if args.split() else ""
    period = parse_period(word, ctx.now.date()) if word else period_of("quarter", ctx.now.date())
    if period is None:
        hint = "不是有效的时间段" if looks_like_period(word) else "看不懂"
        return f"{hint}「{word}」。例：导出 本季度、导出 上季度、导出 2026Q3、导出 2026-11。"
    branch_id = None if member.has("committee") else member.branch_id
    if branch_id is None and not member.has("committee"):
        return "你还没有登记所在支部，无法导出本支部积分。请联系管理员。"
    data = build_workbook(ctx.session, ctx.config, period, branch_id)
    branch = member.branch if branch_id is not None else ""
    name = workbook_name(period, branch)
    scope = branch or "全部支部"
    return [
        Text(f"正在发送 {name}（{period.label}，{scope}）：汇总、明细、创新成果、待审与驳回 四张表。"),
        File(name, data),
    ]


# -- python -m bot export ----------------------------------------------------------------------------


@practice_command(
    "export",
    help="write the points workbook (.xlsx) of a period",
    arguments=(
        (("--period",), {"default": "本季度", "help": "2026Q4, 2026-11, 2026 or 本季度 (default)"}),
        (("--out",), {"required": True, "help": "the .xlsx file to write"}),
        (("--branch",), {"default": "", "help": "one branch by name (default: all)"}),
    ),
)
def export_command(args: argparse.Namespace, config: Config) -> int:
    period = parse_period(args.period, datetime.now(config.tz).date())
    if period is None:
        print(f"--period {args.period!r}: not a period (e.g. 2026Q4, 2026-11, 2026, 本季度)", file=sys.stderr)
        return 1

    def work(session: Session) -> bytes | None:
        branch_id = None
        if args.branch:
            branch_id = people.branch_id(session, args.branch)
            if branch_id is None:
                return None
        return build_workbook(session, config, period, branch_id)

    data = with_database(config, work)
    if data is None:
        print(f"--branch {args.branch!r}: no such branch", file=sys.stderr)
        return 1
    Path(args.out).write_bytes(data)
    print(f"{args.out}: {period.label} ({args.branch or 'all branches'}), {len(data)} bytes")
    return 0
