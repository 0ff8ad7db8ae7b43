"""Commands, declared: who may use them, what form they take, and how a message finds its handler.

Handler modules create a `Router`, register commands with `@router.command(...)` and are composed
with `include_router`. Handlers are plain functions whose parameters are injected by name (`ctx`,
`member`, `session`, `form`, `args`, `config`, `now`). Permission checks run before any handler, for
typed commands and card clicks alike. A command's help is its docstring.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete

from bot.context import Context, Sender
from bot.forms import (
    FieldError,
    Form,
    Parser,
    ask,
    given_positionals,
    half_width,
    parse_form,
    reads_as_input,
    split_fields,
    starts_with_label,
)
from bot.replies import HandlerResult, Reply, Text, as_replies
from storage.models import Dialogue
from storage.vocabulary import Role

ROLE_NAMES = {role.value: role.label for role in Role}  # in the order of precedence shown in 帮助
CANCEL_WORDS = frozenset({"取消", "算了", "退出", "不填了"})
INJECTABLE = frozenset({"ctx", "member", "session", "form", "args", "config", "now"})
_CODE = re.compile(r"[a-z][a-z0-9_]*")
_END_DIALOGUE = delete(Dialogue).where(Dialogue.userid == bindparam("userid"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Command:
    name: str
    func: Callable[..., HandlerResult]
    code: str
    aliases: tuple[str, ...] = ()
    # None: everyone who is a member; a callable: roles known only once every practice is loaded
    # (e.g. whoever may decide some registered kind of item).
    roles: frozenset[str] | Callable[[], frozenset[str]] | None = None
    party_only: bool = False
    form: type[Form] | None = None
    inject: tuple[str, ...] = ()
    args: Parser | None = None  # recognises the input of a command without a form (see `command`)
    reads: bool = False  # only reads: on SQLite it may run beside the writer (see `command`)

    @functools.cached_property
    def doc(self) -> str:
        return inspect.cleandoc(self.func.__doc__ or "")

    @functools.cached_property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    @functools.cached_property
    def gist(self) -> str:
        """The summary's first clause, for the list in 帮助: short enough that a secretary's whole
        list fits one phone message (the rest is in 「帮助 命令」)."""
        first = re.split(r"[；;。，,：:（(]", self.summary, maxsplit=1)[0].strip()
        return first if len(first) <= 24 else first[:23] + "…"

    def allowed(self, sender: Sender) -> bool:
        """Whether `sender` may use this command (`refusal` says why not; 帮助 asks this of each)."""
        roles = self.roles() if callable(self.roles) else self.roles
        if roles is not None and not sender.roles & roles:
            return False
        return not self.party_only or sender.is_party_member

    def refusal(self, sender: Sender) -> str | None:
        """Why `sender` may not use this command, or None if they may."""
        roles = self.roles() if callable(self.roles) else self.roles
        if roles is not None and not sender.roles & roles:
            who = "、".join(ROLE_NAMES.get(r, r) for r in sorted(roles, key=list(ROLE_NAMES).index))
            return f"「{self.name}」仅限{who}使用。发送「帮助」查看你可以用的命令。"
        if self.party_only and not sender.is_party_member:
            return f"「{self.name}」仅限党员（含预备党员）使用。"
        return None

    def call(self, ctx: Context, form: Form | None = None) -> HandlerResult:
        available = {
            "ctx": ctx,
            "member": ctx.member,
            "session": ctx.session,
            "form": form,
            "args": ctx.args,
            "config": ctx.config,
            "now": ctx.now,
        }
        return self.func(**{name: available[name] for name in self.inject})


class Router:
    """A set of commands and media handlers (images, files); routers nest with `include_router`."""

    def __init__(self, name: str = ""):
        self.name = name
        self.commands: list[Command] = []
        self.media_handlers: list[Callable[[Context], HandlerResult]] = []
        # Parts of 我的 contributed by the practices (points, training…), each returning text or "".
        self.profile_sections: list[Callable[[Context], str]] = []
        self._by_word: dict[str, Command] = {}
        self._by_code: dict[str, Command] = {}
        self._longest_first: list[str] = []
        self._role_functions: list[Command] = []  # commands whose roles are given as a function
        self._available: dict[tuple[Any, ...], list[Command]] = {}

    def command(
        self,
        name: str,
        *,
        code: str,
        aliases: tuple[str, ...] | list[str] = (),
        roles: set[str] | frozenset[str] | Callable[[], frozenset[str]] | None = None,
        party_only: bool = False,
        form: type[Form] | None = None,
        args: Parser | None = None,
        reads: bool = False,
    ) -> Callable[[Callable[..., HandlerResult]], Callable[..., HandlerResult]]:
        """Register a command. `code` is its ASCII id, used in card button keys (`code:argument`).

        `args`, for a command without a form, parses what may follow its word (raising `FieldError`
        when that is not its input): then, typed during another command's dialogue with such input
        (「通过 #5」), it interrupts the dialogue instead of being taken as the value asked for.

        `reads=True` says the command usually records nothing (帮助, 我的, 排行): on SQLite the
        dispatcher first runs it on a read-only connection beside the writer, so that a long read does
        not hold everyone's writes, and only its inbox row (and any pushes) go through the writer. Should
        it try to write after all, that attempt is discarded and the message runs again on the writer."""
        if not _CODE.fullmatch(code):
            raise ValueError(f"command code {code!r} must be lower-case ASCII")

        def register(func: Callable[..., HandlerResult]) -> Callable[..., HandlerResult]:
            params = tuple(inspect.signature(func).parameters)
            unknown = set(params) - INJECTABLE
            if unknown:
                raise TypeError(f"{func.__name__}: cannot inject {sorted(unknown)}; use {sorted(INJECTABLE)}")
            if "form" in params and form is None:
                raise TypeError(f"{func.__name__} takes a form but none is declared")
            self._add(
                Command(
                    name,
                    func,
                    code,
                    tuple(aliases),
                    roles if callable(roles) else (frozenset(roles) if roles else None),
                    party_only,
                    form,
                    params,
                    args,
                    reads,
                )
            )
            return func

        return register

    def on_media(self, func: Callable[[Context], HandlerResult]) -> Callable[[Context], HandlerResult]:
        """Register a handler for media (images and files, `ctx.message.media_id`); the first that
        returns something wins."""
        self.media_handlers.append(func)
        return func

    def profile_section(self, func: Callable[[Context], str]) -> Callable[[Context], str]:
        """Register a part of 我的 (e.g. my points this quarter)."""
        self.profile_sections.append(func)
        return func

    def include_router(self, other: Router) -> None:
        for cmd in other.commands:
            self._add(cmd)
        self.media_handlers.extend(other.media_handlers)
        self.profile_sections.extend(other.profile_sections)

    def _add(self, cmd: Command) -> None:
        for word in (cmd.name, *cmd.aliases):
            if half_width(word) in self._by_word:
                raise ValueError(f"command word {word!r} registered twice")
            self._by_word[half_width(word)] = cmd
        if cmd.code in self._by_code:
            raise ValueError(f"command code {cmd.code!r} registered twice")
        self._by_code[cmd.code] = cmd
        self.commands.append(cmd)
        self._longest_first = sorted(self._by_word, key=len, reverse=True)
        if callable(cmd.roles):
            self._role_functions.append(cmd)
        self._available.clear()

    # -- lookup ---------------------------------------------------------------------------------

    def find(self, word: str) -> Command | None:
        return self._by_word.get(half_width(word).strip())

    def by_code(self, code: str) -> Command | None:
        return self._by_code.get(code)

    def split_command(self, first_line: str) -> tuple[Command | None, str, str]:
        """(command, the word as typed, the rest of the line); tolerates `通过#12` and `帮助创新`."""
        line = first_line.strip()
        word, _, rest = line.partition(" ")
        cmd = self.find(word)
        if cmd is not None:
            return cmd, word, rest.strip()
        folded = half_width(line)
        for key in self._longest_first:
            if folded.startswith(key):
                after = folded[len(key) :].strip()
                # A one-character word (我, ?) is glued only to a number, `#`, punctuation or another
                # command's name, so that 我想请假 is not 我 (我的) + 想请假; longer ones (排行本月) always.
                if (
                    len(key) < 2
                    and after
                    and after[0].isalnum()
                    and not after[0].isdigit()
                    and self.find(after) is None
                ):
                    continue
                return self._by_word[key], line[: len(key)], line[len(key) :].strip()
        return None, word, rest.strip()

    def reading_command(self, text: str) -> str | None:
        """The name of the command that typed `text` starts, if that command only reads (a guess
        made before the look-up of the sender: a dialogue in progress still sends it to the writer)."""
        first = text.strip().split("\n", 1)[0]
        cmd, _word, _rest = self.split_command(first)
        return cmd.name if cmd is not None and cmd.reads else None

    def available_to(self, sender: Sender) -> list[Command]:
        """The commands `sender` may use, in the order registered (what 帮助 lists). Kept for each set
        of roles, party membership and what the commands' role functions return now (asking each
        command cost ~40 µs a 帮助); registering a command forgets what was kept."""
        now = tuple(c.roles() if callable(c.roles) else c.roles for c in self._role_functions)
        key = (sender.roles, sender.is_party_member, now)
        found = self._available.get(key)
        if found is None:
            found = self._available[key] = [c for c in self.commands if c.allowed(sender)]
        return list(found)

    def suggest(self, word: str, sender: Sender, limit: int = 3) -> list[str]:
        """The nearest commands this sender may use, best first."""
        folded = half_width(word)
        scored: list[tuple[float, str]] = []
        for cmd in self.available_to(sender):
            best = 0.0
            for name in (cmd.name, *cmd.aliases):
                ratio = difflib.SequenceMatcher(None, folded, half_width(name)).ratio()
                if name in folded or (folded and folded in name):
                    ratio = max(ratio, 0.8)
                best = max(best, ratio)
            if best >= 0.3:
                scored.append((best, cmd.name))
        scored.sort(key=lambda t: -t[0])
        return [name for _, name in scored[:limit]]

    # -- handling -------------------------------------------------------------------------------

    def handle_text(self, ctx: Context) -> list[Reply]:
        """Route a text message: cancel, a dialogue in progress, or a command."""
        assert ctx.member is not None
        text = ctx.message.content.strip()
        if half_width(text) in CANCEL_WORDS:
            return [Text(self._cancel(ctx))]
        first, *lines = text.splitlines() or [""]
        cmd, word, rest = self.split_command(first)
        dialogue = _active_dialogue(ctx)
        if dialogue is not None:
            if cmd is None or not self._takes_over(ctx, cmd, rest, lines):
                return self._continue(ctx, dialogue, text)
            ctx.session.delete(dialogue)
            ctx.session.flush()  # so that a dialogue the command opens anew is a fresh row
        if cmd is None:
            return [Text(self._unknown(word, ctx.member))]
        return self.run(ctx, cmd, rest, lines)

    def _takes_over(self, ctx: Context, cmd: Command, rest: str, lines: list[str]) -> bool:
        """During a dialogue, whether text that begins with a command word is that command rather
        than the value asked for: a command word alone is (the one in progress starts over), and so
        is a command with what reads as its input (「驳回 #4 缺少照片」 typed again in full after
        「驳回 #4」 asked for the reason). A value that merely begins with a command word (「排行第一
        的班组…」) stays a value. A command without a form has input only if it declares `args`;
        otherwise only its bare word interrupts."""
        if not rest and not lines:
            return True
        if cmd.form is not None:
            return reads_as_input(cmd.form, rest, lines, ctx)
        if cmd.args is None:
            return False
        try:
            cmd.args("\n".join([rest, *lines]).strip(), ctx)
        except FieldError:
            return False
        return True

    def handle_card(self, ctx: Context) -> list[Reply]:
        """A template card click: its EventKey `code:argument` runs that command like typed text."""
        assert ctx.member is not None
        code, _, argument = ctx.message.event_key.partition(":")
        cmd = self.by_code(code)
        if cmd is None:
            return [Text("这个按钮已失效，请用文字命令操作。发送「帮助」查看命令。")]
        return self.run(ctx, cmd, argument, [])

    def handle_media(self, ctx: Context) -> list[Reply]:
        """An image or a file: the first media handler that takes it answers; else say what to do."""
        for handler in self.media_handlers:
            replies = as_replies(handler(ctx))
            if replies:
                return replies
        what = "文件" if ctx.message.kind == "file" else "图片"
        return [
            Text(
                f"{what}已收到，但现在没有可以附上的事项。请先发送申报或投稿，"
                f"再在 10 分钟内发图片或文件，会作为证明材料附上。"
            )
        ]

    def run(self, ctx: Context, cmd: Command, rest: str, lines: list[str]) -> list[Reply]:
        assert ctx.member is not None
        ctx.extra["command"] = cmd.name
        refusal = cmd.refusal(ctx.member)
        if refusal is not None:
            return [Text(refusal)]
        ctx.args = "\n".join([rest, *lines]).strip()
        if cmd.form is None:
            return as_replies(cmd.call(ctx))
        raw = split_fields(cmd.form, rest, lines)
        return self._submit(ctx, cmd, raw, intro_errors=True)

    def _submit(self, ctx: Context, cmd: Command, raw: dict[str, str], *, intro_errors: bool) -> list[Reply]:
        assert cmd.form is not None
        parsed = parse_form(cmd.form, raw, ctx)
        if parsed.form is not None:
            if ctx.has_dialogue:  # one statement saved on a one-message form, the usual case
                ctx.session.connection().execute(_END_DIALOGUE, {"userid": ctx.userid})
            return as_replies(cmd.call(ctx, parsed.form))
        pending = [n for n in parsed.errors] + parsed.missing
        field = cmd.form.field(pending[0])
        for name in parsed.errors:  # a wrong value is asked for again from scratch
            raw.pop(name, None)
        _save_dialogue(ctx, cmd, raw, field.name)
        parts = list(parsed.errors.values())
        if not parts and not raw and intro_errors:
            parts.append(f"开始填写「{cmd.name}」。")
        parts.append(ask(field, given_positionals(cmd.form, raw, cmd.name, field.name)))
        return [Text("\n".join(parts))]

    def _continue(self, ctx: Context, dialogue: Dialogue, text: str) -> list[Reply]:
        cmd = self.find(dialogue.command)
        if cmd is None or cmd.form is None:  # the command went away in an upgrade
            ctx.session.delete(dialogue)
            return [Text("之前的填写已失效，请重新发送命令。")]
        raw: dict[str, str] = json.loads(dialogue.values)
        if starts_with_label(cmd.form, text):  # e.g. "说明：…" or several "字段：值" lines at once
            raw.update(split_fields(cmd.form, "", [text]))
        else:
            raw[dialogue.awaiting] = text.strip()
        refusal = cmd.refusal(ctx.member) if ctx.member else None
        if refusal is not None:
            ctx.session.delete(dialogue)
            return [Text(refusal)]
        ctx.extra["command"] = cmd.name
        return self._submit(ctx, cmd, raw, intro_errors=False)

    def _cancel(self, ctx: Context) -> str:
        removed = ctx.session.execute(delete(Dialogue).where(Dialogue.userid == ctx.userid)).rowcount
        return "已取消，填写的内容没有保存。" if removed else "当前没有进行中的填写。"

    def _unknown(self, word: str, sender: Sender) -> str:
        near = self.suggest(word, sender)
        shown = word if len(word) <= 12 else word[:12] + "…"
        if near:
            return f"没有「{shown}」这个命令。你是不是想用：{'、'.join(near)}？发送「帮助」查看全部命令。"
        return f"没有「{shown}」这个命令。发送「帮助」查看你可以用的命令。"


def _active_dialogue(ctx: Context) -> Dialogue | None:
    if not ctx.has_dialogue:  # most messages: the dispatcher's first look-up already said so
        return None
    d = ctx.session.get(Dialogue, ctx.userid)
    if d is not None and d.expires_at <= ctx.now:
        ctx.session.delete(d)
        return None
    return d


def _save_dialogue(ctx: Context, cmd: Command, raw: dict[str, str], awaiting: str) -> None:
    expires = ctx.now + timedelta(minutes=ctx.config.handlers.form_ttl_minutes)
    values = json.dumps(raw, ensure_ascii=False)
    d = ctx.session.get(Dialogue, ctx.userid)
    if d is None:
        ctx.session.add(
            Dialogue(
                userid=ctx.userid, command=cmd.name, values=values, awaiting=awaiting, expires_at=expires
            )
        )
    else:
        d.command, d.values, d.awaiting, d.expires_at = cmd.name, values, awaiting, expires


def describe(cmd: Command) -> str:
    """Full help for one command: its docstring, its fields and a filled-in example."""
    parts = [f"【{cmd.name}】{cmd.doc}" if cmd.doc else f"【{cmd.name}】"]
    if cmd.aliases:
        parts.append("也可以写：" + "、".join(cmd.aliases))
    if cmd.form is not None:
        fields = "、".join(f.label + ("" if f.required else "（选填）") for f in cmd.form.fields)
        parts.append(f"字段：{fields}")
        parts.append("示例：\n" + cmd.form.example(cmd.name))
    return "\n".join(parts)
