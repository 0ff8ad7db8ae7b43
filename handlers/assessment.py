"""The quarterly 党建考评: a branch's score combined from components that practices register, by the
weights and scales in the `assessment` section; `考评` shows it, `考评 加分` lets the committee add or
take points by hand (audited items), a job posts it to the committee's group with a PNG table, and the
quarter workbook gains its sheet.

A practice registers a component with `@assessment_component(key, label)`: a function returning each
branch's value for a quarter. A component weighted in config but not registered (its practice is not
installed) is shown as 未接入, and the weights of the others are rescaled so the score stays out of 100.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.cli import practice_command
from bot.config import Config
from bot.context import Context, Sender, tone
from bot.forms import as_number, half_width
from bot.replies import Image, Markdown
from bot.router import Router
from bot.scheduler import JobContext, job
from handlers.assessment_config import AssessmentConfig, Weighted
from handlers.export import Scope, Sheet, workbook_sheet
from handlers.items import ItemKind
from handlers.ledger import fmt, signed, x100
from handlers.periods import Period, looks_like_period, parse_period, period_of, relative
from handlers.rankings import branch_assessment, branch_scores, competition_ranks
from storage import assessment as store
from storage import generations
from storage import items as item_store
from storage.assessment import AssessmentAddition
from storage.items import Item
from storage.points import TOTAL
from storage.queries import insert_now
from storage.vocabulary import ItemState, Role

router = Router("assessment")

ComponentFunc = Callable[[Session, Config, Period], dict[int, float]]
MovesFunc = Callable[[Session, Config, Period], Hashable]


@dataclass(frozen=True, slots=True)
class Component:
    key: str
    label: str
    unit: str
    compute: ComponentFunc
    moves_with: MovesFunc | None = None


COMPONENTS: dict[str, Component] = {}


def assessment_component(
    key: str, label: str, unit: str = "", *, moves_with: MovesFunc | None = None
) -> Callable[[ComponentFunc], ComponentFunc]:
    """Register a component of the 党建考评: `func(session, config, quarter)` → {branch id: value}.

    Rates (attendance, coverage, quota) return a fraction 0–1; counts and points return the number.
    The component may read only the tables of `storage.generations.WATCHED["assessment"]`: a result is
    reused until one of them changes. If its value also changes with the clock (attendance counts the
    activities whose sign-in has closed), `moves_with(session, config, quarter)` returns something
    cheap that differs whenever the clock has changed the value."""

    def register(func: ComponentFunc) -> ComponentFunc:
        if key in COMPONENTS:
            raise ValueError(f"assessment component {key!r} registered twice")
        COMPONENTS[key] = Component(key, label, unit, func, moves_with)
        return func

    return register


# -- the rule (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    key: str
    label: str
    scale: str
    weight: float  # as configured
    value: float | None  # None: the component is not registered (未接入)
    points: float  # what it adds to the score, after rescaling


@dataclass(frozen=True, slots=True)
class BranchScore:
    branch_id: int
    name: str
    score: float
    rank: int
    parts: tuple[Part, ...]


def rescale_factor(weights: Sequence[Weighted], registered: Sequence[str]) -> float:
    """How much the registered relative/rate weights are stretched so they make what all of them make."""
    scaled = [w for w in weights if w.scale != "direct"]
    total = sum(w.weight for w in scaled)
    present = sum(w.weight for w in scaled if w.key in registered)
    return total / present if present else 0.0


def combine(
    weights: Sequence[Weighted],
    values: Mapping[str, Mapping[int, float]],
    branches: Sequence[tuple[int, str]],
    labels: Mapping[str, str],
) -> list[BranchScore]:
    """Each branch's score, best first with competition ranks. `values` holds the registered components
    only: relative ones score value ÷ the best branch's value × weight; rates min(value, 1) × weight;
    both are stretched by `rescale_factor`; direct ones add value × weight as they are."""
    factor = rescale_factor(weights, list(values))
    best = {k: max([0.0, *v.values()]) for k, v in values.items()}
    scored = []
    for branch_id, name in branches:
        parts = []
        for w in weights:
            label = w.label or labels.get(w.key, w.key)
            if w.key not in values:
                parts.append(Part(w.key, label, w.scale, w.weight, None, 0.0))
                continue
            value = values[w.key].get(branch_id, 0.0)
            if w.scale == "direct":
                points = value * w.weight
            elif w.scale == "rate":
                points = max(0.0, min(value, 1.0)) * w.weight * factor
            else:
                points = (max(0.0, value) / best[w.key] * w.weight * factor) if best[w.key] > 0 else 0.0
            parts.append(Part(w.key, label, w.scale, w.weight, value, round(points, 2)))
        scored.append((branch_id, name, round(sum(p.points for p in parts), 2), tuple(parts)))
    scored.sort(key=lambda s: (-s[2], s[0]))
    ranks = competition_ranks([x100(s[2]) for s in scored])
    return [
        BranchScore(b, n, score, rank, parts)
        for (b, n, score, parts), rank in zip(scored, ranks, strict=True)
    ]


# Computed scores, kept under the `assessment` generation token (`storage.generations`): at 10,000
# members a quarter's 党建考评 reads every member's total and skill level, about 80 ms, and 排行 支部
# needs two quarters (this one, and the last for the arrows). A few quarters' results are kept.
_KEPT: generations.Kept[list[BranchScore]] = generations.Kept(generations.ASSESSMENT, size=8)


def assess(session: Session, config: Config, period: Period) -> list[BranchScore]:
    """The 党建考评 of every branch for a quarter, by the configured rule; reused while no table it
    reads has changed (and, for components that move with the clock, while the clock has not moved
    them)."""
    weights = AssessmentConfig.of(config).components

    def key() -> Hashable:
        moved = tuple(
            COMPONENTS[w.key].moves_with(session, config, period)  # type: ignore[misc]
            for w in weights
            if w.key in COMPONENTS and COMPONENTS[w.key].moves_with is not None
        )
        return (id(config), period.key, moved)

    return list(_KEPT.get(session, key, lambda: _assess(session, config, period, weights)))


def _assess(
    session: Session, config: Config, period: Period, weights: Sequence[Weighted]
) -> list[BranchScore]:
    values = {
        w.key: COMPONENTS[w.key].compute(session, config, period) for w in weights if w.key in COMPONENTS
    }
    labels = {k: c.label for k, c in COMPONENTS.items()} | KNOWN_LABELS
    return combine(weights, values, store.branches(session), labels)


@branch_assessment
def ranked_branches(session: Session, config: Config, period: Period) -> list[tuple[int, str, int, int]]:
    """排行 支部 for a quarter's overall total: each branch's 党建考评 score (x100) and rank, as in 考评."""
    return [(s.branch_id, s.name, x100(s.score), s.rank) for s in assess(session, config, period)]


# Labels of the components other practices will register, so 未接入 reads in Chinese until they do.
KNOWN_LABELS = {
    "training_coverage": "以技带岗覆盖率",
    "publicity_quota": "宣传录用完成率",
    "activity_attendance": "活动出勤率",
}


def unregistered(config: Config) -> list[str]:
    return [w.key for w in AssessmentConfig.of(config).components if w.key not in COMPONENTS]


# -- the components computed here -------------------------------------------------------------------


@assessment_component("average_points", "党员人均积分", unit="分")
def average_points(session: Session, config: Config, period: Period) -> dict[int, float]:
    """`points.branch_ranking` (`handlers.rankings.branch_scores`): points per party member in the quarter."""
    return {b: score / 100 for b, _name, score, _detail in branch_scores(session, config, period.key, TOTAL)}


@assessment_component("additions", "考评加分", unit="分")
def additions(session: Session, config: Config, period: Period) -> dict[int, float]:
    """What the committee added or took by hand (`考评 加分`), not voided."""
    return {b: p / 100 for b, p in store.additions_per_branch(session, period.key).items()}


class AdditionKind(ItemKind):
    """考评加分: booked by a committee member directly; voidable by the committee with a reason."""

    name = "考评加分"
    decider_roles = frozenset({Role.COMMITTEE})
    takes_evidence = False

    def approver_roles(self, config: Config) -> list[str]:
        return [Role.COMMITTEE]

    def refusal(self, session: Session, config: Config, member: Sender, item: Item) -> str | None:
        return None if member.has(Role.COMMITTEE) else f"#{item.id} 是党建考评加分，只能由党总支处理。"

    def value(self, session: Session, item: Item) -> str:
        row = session.get(AssessmentAddition, item.id)
        return f"{signed(row.points_x100)} 分" if row else ""


ADDITION = AdditionKind().register()


# -- 考评 -------------------------------------------------------------------------------------------


def value_text(part: Part, unit: str) -> str:
    if part.value is None:
        return "未接入"
    if part.scale == "rate":
        return f"{part.value * 100:.0f}%"
    number = f"{part.value:.2f}".rstrip("0").rstrip(".")
    return f"{'+' if part.scale == 'direct' and part.value > 0 else ''}{number}{unit}"


def part_text(part: Part) -> str:
    unit = COMPONENTS[part.key].unit if part.key in COMPONENTS else ""
    shown = value_text(part, unit)
    if part.value is None:
        return f"{part.label} {shown}"
    return f"{part.label} {shown}→{number(part.points)}"


def number(value: float) -> str:
    return fmt(x100(value))


def missing_note(config: Config) -> str:
    missing = unregistered(config)
    if not missing:
        return ""
    names = "、".join(KNOWN_LABELS.get(k, k) for k in missing)
    return f"未接入：{names}（其余各项按权重折算到满分）。"


def render(config: Config, period: Period, scores: Sequence[BranchScore], only: int | None) -> str:
    lines = [f"党建考评 · {period.label}（{period.span}）"]
    shown = [s for s in scores if only is None or s.branch_id == only]
    for s in shown:
        lines.append(f"{s.rank}. {s.name} {number(s.score)} 分")
        lines.append("   " + " · ".join(part_text(p) for p in s.parts))
    if only is not None:
        lines.append(f"（共 {len(scores)} 个支部参评，其他支部的得分由党总支查看）")
    note = missing_note(config)
    if note:
        lines.append(note)
    return "\n".join(lines)


def find_branch(session: Session, word: str) -> tuple[int, str] | str:
    """A branch by its name (第一党支部, 第一支部, 一支部), or a refusal with a did-you-mean."""
    found = store.branches(session)
    plain = {n.replace("党", ""): (i, n) for i, n in found}
    key = word.strip().replace("党", "")
    if key in plain:
        return plain[key]
    near = difflib.get_close_matches(key, list(plain), n=2, cutoff=0.5)
    names = "、".join(plain[k][1] for k in near) or "、".join(n for _, n in found)
    return f"没有「{word.strip()}」这个支部。你是不是想写：{names}？"


def add_points(ctx: Context, member: Sender, rest: str) -> str:
    usage = "考评 加分 第一党支部 3 承办车间党建+质量现场会"
    if not member.has(Role.COMMITTEE):
        return "考评加分只能由党总支委员记录。"
    words = half_width(rest).split(maxsplit=2)
    if len(words) < 3:
        return f"请写支部、分值和说明，例：{usage}（扣分写负数）。"
    branch = find_branch(ctx.session, words[0])
    if isinstance(branch, str):
        return branch
    try:
        points_x100 = x100(as_number(words[1].replace("+", ""), ctx))
    except ValueError:
        return f"「{words[1]}」不是分值，例：{usage}。"
    limit = AssessmentConfig.of(ctx.config).max_addition
    if points_x100 == 0 or abs(points_x100) > x100(limit):
        return f"分值应在 ±{number(limit)} 分以内且不为 0，例：{usage}。"
    reason = words[2].strip()
    if len(reason) < 4:
        return f"请写清加分或扣分的原因，例：{usage}。"
    quarter = period_of("quarter", ctx.now.date())
    branch_id, name = branch
    item_id = item_store.new_item(
        ctx.session,
        ADDITION.name,
        ctx.now,
        member_id=None,
        submitted_by=member.id,
        branch_id=branch_id,
        title=f"{name} {reason[:40]}",
        status=ItemState.APPROVED,
        decided_by=member.id,
    )
    insert_now(
        ctx.session,
        AssessmentAddition(
            id=item_id, branch_id=branch_id, period=quarter.key, points_x100=points_x100, description=reason
        ),
    )
    return (
        f"已记考评加分 #{item_id}：{name} {signed(points_x100)} 分（{quarter.label}），{reason}。"
        f"如有误，用「撤销 #{item_id} 理由」作废。"
    )


@router.command(
    "考评",
    code="assessment",
    aliases=("党建考评", "支部考评"),
    roles={Role.COMMITTEE, Role.SECRETARY},
    reads=True,
)
def assessment(ctx: Context, member: Sender, args: str) -> str:
    """党建考评：考评 [2026Q4]，各支部得分和构成。
    支部书记看本支部；党总支加分或扣分：考评 加分 支部 分值 说明。"""
    text = args.strip()
    if text.startswith("加分") or text.startswith("扣分"):
        rest = text[2:]
        if text.startswith("扣分"):
            parts = half_width(rest).split(maxsplit=2)
            if len(parts) >= 2 and not parts[1].startswith("-"):
                parts[1] = "-" + parts[1]
            rest = " ".join(parts)
        return add_points(ctx, member, rest)
    today = ctx.now.date()
    period = parse_period(text, today) if text else period_of("quarter", today)
    if period is None or period.kind != "quarter":
        if text and not looks_like_period(text):
            return (
                f"看不懂「{text}」。写法：考评 [本季度|上季度|2026Q4]；党总支加分：考评 加分 支部 分值 说明。"
            )
        return f"「{text}」不是季度。党建考评按季度计，例：考评 2026Q4 或 考评 上季度。"
    only = None if member.has(Role.COMMITTEE) else member.branch_id
    if only is None and not member.has(Role.COMMITTEE):
        return "你还没有登记所在支部，看不到本支部的考评。请联系管理员。"
    scores = assess(ctx.session, ctx.config, period)
    return render(ctx.config, period, scores, only)


# -- the broadcast and the workbook -----------------------------------------------------------------


def table(scores: Sequence[BranchScore]) -> tuple[list[str], list[list[str]]]:
    header = ["名次", "支部", *(p.label for p in scores[0].parts), "得分"] if scores else ["支部"]
    rows = [
        [
            str(s.rank),
            s.name,
            *(
                value_text(p, COMPONENTS[p.key].unit if p.key in COMPONENTS else "")
                + ("" if p.value is None else f"（{number(p.points)}）")
                for p in s.parts
            ),
            number(s.score),
        ]
        for s in scores
    ]
    return header, rows


@job("assessment_broadcast")
def assessment_broadcast(ctx: JobContext) -> str:
    """Post a quarter's 党建考评 (previous_quarter by default) to `groups` as markdown and a PNG table."""
    groups = ctx.arguments.get("groups", [])
    groups = [groups] if isinstance(groups, str) else list(groups)
    word = str(ctx.arguments.get("period", "previous_quarter"))
    period = relative(word, ctx.now.date())
    if period is None or period.kind != "quarter":
        raise ValueError(f"period {word!r} is not a quarter (use previous_quarter or current_quarter)")
    scores = assess(ctx.session, ctx.config, period)
    if not scores or not any(s.score for s in scores):
        return f"{period.label}没有党建考评得分，没有发布。"
    lines = [f"### 党建考评 · {period.label}", f"> {period.span}"]
    for s in scores:
        lines.append(f"**{s.rank}.** {s.name} {tone(f'{number(s.score)} 分', 'info')}")
        lines.append(tone(" · ".join(part_text(p) for p in s.parts), "comment"))
    note = missing_note(ctx.config)
    if note:
        lines.append(tone(note, "warning"))
    header, rows = table(scores)
    # Drawn by the outbox as it sends it, not inside the job's transaction.
    data = {"title": f"党建考评 · {period.label}", "header": list(header), "rows": rows, "note": note}
    picture = Image.drawn(f"党建考评-{period.key}.png", "table", data)
    for group in groups:
        ctx.broadcast(group, Markdown("\n".join(lines)))
        ctx.broadcast(group, picture)
    if not groups:
        return f"{period.label}党建考评已生成，但没有配置要发布的群，没有发送。"
    return f"已把{period.label}党建考评（文字和表格图片）发到 {len(groups)} 个群：{'、'.join(groups)}。"


@workbook_sheet(110)
def assessment_sheet(session: Session, config: Config, scope: Scope) -> Sheet:
    """党建考评: each branch's components (value and points) and score, for the workbook's quarter."""
    period = scope.period if scope.period.kind == "quarter" else period_of("quarter", scope.period.start)
    scores = assess(session, config, period)
    if scope.branch_id is not None:
        scores = [s for s in scores if s.branch_id == scope.branch_id]
    parts = scores[0].parts if scores else ()
    header = ["名次", "支部", *(h for p in parts for h in (p.label, f"{p.label}得分")), "总分"]
    rows = [
        [
            s.rank,
            s.name,
            *(
                v
                for p in s.parts
                for v in (("未接入", "") if p.value is None else (round(p.value, 4), round(p.points, 2)))
            ),
            round(s.score, 2),
        ]
        for s in scores
    ]
    return Sheet("党建考评", header, rows)


@practice_command(
    "assessment", "components", help="list the 党建考评 components: weighted, registered, 未接入"
)
def list_components(args: object, config: Config) -> int:
    """`python -m bot assessment components`: which weighted components are computed and which are not."""
    factor = rescale_factor(AssessmentConfig.of(config).components, list(COMPONENTS))
    for w in AssessmentConfig.of(config).components:
        state = "registered" if w.key in COMPONENTS else "NOT REGISTERED (未接入: weight redistributed)"
        print(f"{w.key:22} weight {w.weight:g} {w.scale:8} {state}")
    missing = unregistered(config)
    if missing:
        print(
            f"warning: {', '.join(missing)} not registered; relative/rate weights are stretched ×{factor:.3f}"
        )
    return 0
