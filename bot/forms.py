"""Forms: typed fields that a command collects from `字段：值` lines or over a short dialogue.

A form is declared as a class of `Field`s; each field parses its raw text with a function that
either returns the value or raises `FieldError` with a Chinese sentence saying what was wrong.
Every error shown to a person names the field, the problem and an accepted example.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Protocol

Parser = Callable[[str, Any], Any]  # (raw text, handler context) -> value


class FieldError(ValueError):
    """A value a person typed is not acceptable; the message says why, in Chinese."""


# Full-width ASCII (U+FF01–U+FF5E) and the ideographic space fold to their half-width twins. Each
# character maps to exactly one, so offsets found in the folded text hold in the original.
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20, 0x3001: 0x2C}


def half_width(text: str) -> str:
    """Fold full-width forms to half-width (`：`→`:`, `，`→`,`, `＃`→`#`, `１`→`1`, `　`→space, `、`→`,`)."""
    return text.translate(_HALF_WIDTH)


class Named(Protocol):
    name: str
    aliases: list[str]


def near_names(entries: Sequence[Named], text: str) -> list[str]:
    """The names (at most three, best first) of entries whose name or alias is close to `text`."""
    words = {w: e.name for e in entries for w in (e.name, *e.aliases)}
    return list(dict.fromkeys(words[w] for w in difflib.get_close_matches(text.strip(), list(words), 3, 0.3)))


def unknown_choice(entries: Sequence[Named], text: str, noun: str) -> FieldError:
    """「没有「X」这个{noun}。你是不是想写：…？可选：…」 for a configured list people pick from by name."""
    near, choices = near_names(entries, text), "、".join(e.name for e in entries)
    if near:
        return FieldError(f"没有「{text}」这个{noun}。你是不是想写：{'、'.join(near)}？可选：{choices}")
    return FieldError(f"没有「{text}」这个{noun}，可选：{choices}")


def as_text(raw: str, _ctx: Any) -> str:
    value = raw.strip()
    if not value:
        raise FieldError("不能为空")
    return value


def as_number(raw: str, _ctx: Any) -> float:
    try:
        return float(half_width(raw).strip().replace("分", ""))
    except ValueError:
        raise FieldError("应是一个数字") from None


_DATE_FORMS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")


def parse_date(raw: str, today: date) -> date:
    """Dates as people write them: 2026-11-20, 2026/11/20, 11月20日, 今天, 昨天, 前天."""
    value = half_width(raw).strip().replace(" ", "")
    relative = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2}
    if value in relative:
        return date.fromordinal(today.toordinal() - relative[value])
    for fmt in _DATE_FORMS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    m = re.fullmatch(r"(\d{1,2})[月/.-](\d{1,2})日?", value)
    if m:
        try:
            return date(today.year, int(m.group(1)), int(m.group(2)))
        except ValueError:
            pass
    raise FieldError("不是有效的日期")


@dataclass
class Field:
    """One field of a form. `label` is what people type (e.g. 指标); `example` is always valid."""

    label: str
    example: str
    parse: Parser = as_text
    required: bool = True
    help: str = ""
    aliases: tuple[str, ...] = ()
    positional: bool = False  # may follow the command word on the first line
    rest: bool = False  # a positional field that takes the remainder of the line
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.aliases)

    def error(self, problem: str) -> str:
        return f"「{self.label}」{problem}（例：{self.example}）"


class Form:
    """Base class of a command's form; subclasses declare `Field`s as class attributes."""

    fields: ClassVar[tuple[Field, ...]] = ()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        found: list[Field] = []
        for klass in reversed(cls.__mro__):
            found.extend(v for v in vars(klass).values() if isinstance(v, Field) and v not in found)
        cls.fields = tuple(found)

    def __init__(self, **values: Any):
        for f in self.fields:
            setattr(self, f.name, values.get(f.name))

    def check(self, ctx: Any) -> dict[str, str]:
        """Cross-field rules; return {field name: problem}. Override where fields depend on each other."""
        return {}

    @classmethod
    def field(cls, name: str) -> Field:
        return next(f for f in cls.fields if f.name == name)

    @classmethod
    def example(cls, command: str) -> str:
        return "\n".join([command, *(f"{f.label}：{f.example}" for f in cls.fields)])


@dataclass
class Parsed:
    """The outcome of reading raw field texts: typed values, or problems by field name."""

    form: Form | None
    errors: dict[str, str]
    missing: list[str]


_LABELS: dict[type[Form], tuple[tuple[Field, ...], dict[str, Field], re.Pattern[str]]] = {}


def _labels(form: type[Form]) -> tuple[dict[str, Field], re.Pattern[str]]:
    """Each label (folded) with its field, and the pattern that finds `label：` in a line; built once
    for each form's fields (~25 µs a message otherwise)."""
    kept = _LABELS.get(form)
    if kept is None or kept[0] is not form.fields:
        by_label = {half_width(lbl): f for f in form.fields for lbl in f.labels}
        pattern = re.compile(
            r"(?:^|(?<=[\s,;，；]))("
            + "|".join(re.escape(k) for k in sorted(by_label, key=len, reverse=True))
            + r")\s*[:：]"
        )
        kept = _LABELS[form] = (form.fields, by_label, pattern)
    return kept[1], kept[2]


def split_fields(form: type[Form], first_line_rest: str, lines: list[str]) -> dict[str, str]:
    """Map raw texts to field names from `label：value` segments, positional words and bare lines.

    Only known labels start a field, so a colon inside free text (e.g. a 说明 with "注意：…") stays in
    the value. A line without a label continues the previous field, or, before any label, fills the
    next positional or required field in order.
    """
    by_label, pattern = _labels(form)
    raw: dict[str, str] = {}
    order = [f for f in form.fields if f.positional] or [f for f in form.fields if f.required]

    def next_unfilled() -> Field | None:
        return next((f for f in order if f.name not in raw), None)

    labelled = False  # once a label has been seen, bare lines continue the field before them

    def take(text: str, current: Field | None, first_line: bool) -> Field | None:
        nonlocal labelled
        matches = list(pattern.finditer(half_width(text)))
        head = (text[: matches[0].start()] if matches else text).strip()
        if head and labelled and current is not None:
            raw[current.name] = (raw[current.name] + "\n" + head).strip()
        elif head and first_line:
            words = head.split()
            while words and (f := next_unfilled()) is not None:
                if f.rest or len([x for x in order if x.name not in raw]) == 1:
                    raw[f.name], words = " ".join(words), []
                else:
                    raw[f.name] = words.pop(0)
        elif head and (f := next_unfilled()) is not None:
            raw[f.name] = head
            current = f
        for i, m in enumerate(matches):
            f = by_label[m.group(1)]
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            raw[f.name] = text[m.end() : end].strip().rstrip(",，;；").strip()
            current, labelled = f, True
        return current

    current = take(first_line_rest, None, first_line=True) if first_line_rest.strip() else None
    for line in lines:
        if line.strip():
            current = take(line, current, first_line=False)
    return raw


def starts_with_label(form: type[Form], text: str) -> bool:
    """Whether `text` begins with one of the form's labels followed by a colon."""
    folded = half_width(text).lstrip()
    return any(
        re.match(re.escape(half_width(lbl)) + r"\s*:", folded) for f in form.fields for lbl in f.labels
    )


def lead_field(form: type[Form]) -> Field | None:
    """The field a command's first word after its name fills: the first positional one, else the
    first required one (as `split_fields` reads a bare first line)."""
    return next((f for f in form.fields if f.positional), None) or next(
        (f for f in form.fields if f.required), None
    )


def reads_as_input(form: type[Form], first_line_rest: str, lines: list[str], ctx: Any) -> bool:
    """Whether the text after a command word is that command's input, not a value that merely begins
    with the command's word: it uses the form's labels (`说明：…`), or its first word(s) fill the
    lead field with something that field accepts. 「驳回 #4 缺少照片」 is input to 驳回 (`#4` is an item
    number); 「排行第一的班组…」 or 「申报材料不全」 are not input to 排行 or 申报."""
    if any(starts_with_label(form, line) for line in (first_line_rest, *lines) if line.strip()):
        return True
    lead = lead_field(form)
    if lead is None:
        return False
    text = split_fields(form, first_line_rest, lines).get(lead.name, "")
    if not text.strip():
        return False
    try:
        lead.parse(text, ctx)
    except FieldError:
        return False
    return True


def parse_form(form: type[Form], raw: dict[str, str], ctx: Any) -> Parsed:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    missing: list[str] = []
    for f in form.fields:
        text = raw.get(f.name, "")
        if not text.strip():
            if f.required:
                missing.append(f.name)
            continue
        try:
            values[f.name] = f.parse(text, ctx)
        except FieldError as exc:
            errors[f.name] = f.error(str(exc))
    if errors or missing:
        return Parsed(None, errors, missing)
    instance = form(**values)
    cross = instance.check(ctx)
    if cross:
        return Parsed(None, {k: form.field(k).error(v) for k, v in cross.items()}, [])
    return Parsed(instance, {}, [])


def ask(field: Field, about: str = "") -> str:
    """The question for one field. `about` names what the answer is for (e.g. 「驳回 #4」), so that a
    person who left and came back, or who has several items open, knows which one is meant."""
    hint = f"，{field.help}" if field.help else ""
    prefix = f"{about}：" if about else ""
    return f"{prefix}请输入「{field.label}」{hint}（例：{field.example}）。发送「取消」可放弃。"


def given_positionals(form: type[Form], raw: dict[str, str], command: str, asking: str) -> str:
    """「驳回 #4」: the command and the positional values already given (not the one being asked),
    written the way the field's example writes them (`4` from a card button and `＃4` read `#4`)."""
    shown = []
    for f in form.fields:
        value = half_width(raw.get(f.name, "")).strip()
        if not f.positional or f.name == asking or not value:
            continue
        if f.example.startswith("#") and value.isdigit():
            value = "#" + value
        shown.append(value)
    return f"{command} {' '.join(shown)}" if shown else ""
