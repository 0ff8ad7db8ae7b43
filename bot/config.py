"""Typed configuration: `config.yaml` validated once, at start, into pydantic objects.

Any value may be written `${ENV_VAR}` (or `${ENV_VAR:-default}`); substitution happens before
validation so typed fields see the real value. `python -m bot check` prints every problem with its
key path and exits 1.

This module holds the runtime's own settings (WeCom, server, database, outbox, groups, schedules,
admins) and the kit the practices build their sections with (`PracticeSection`, `NamedEntry`,
`Problems`). Each practice declares its section (points, skills, publicity …) next to its handlers
and registers it with `@config_section`; `parse_config` validates the spine and every section at once.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from storage.vocabulary import ILUO_ORDER, Role, SkillLevel

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
DEFAULT_CONFIG_PATH = "config.yaml"
PRACTICES_PACKAGE = "handlers"  # where the practices live; importing it registers their sections


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- shared helpers for the domain sections -------------------------------------------------------


@functools.lru_cache(maxsize=8192)  # names and aliases are looked up on every claim: fold each once
def comparison_key(text: str) -> str:
    """Fold what people type into a comparable key: full-width → half-width, no spaces, case-free."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


class Problems:
    """Collects `(sub.path, message)` pairs inside a validator so one run reports all of them.

    Raised as one pydantic error of type `config_problems`; `format_validation_error` expands it
    into one line per problem, each prefixed with the section's own path.
    """

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            summary = "; ".join(f"{p}: {m}" if p else m for p, m in self.items)
            raise PydanticCustomError(
                "config_problems", "{summary}", {"summary": summary, "problems": self.items}
            )


def sub_path(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


_CODE = re.compile(r"[A-Za-z0-9_-]+")


def check_code(problems: Problems, path: str, code: str) -> None:
    if not _CODE.fullmatch(code):
        problems.add(path, "must be letters, digits, '-' or '_' (e.g. A01)")


def names_of(entries: Sequence[NamedEntry], sep: str = ", ") -> str:
    return sep.join(e.name for e in entries)


def check_unique_names(problems: Problems, path: str, entries: Sequence[NamedEntry]) -> None:
    """Names and aliases must identify one entry each, after normalisation."""
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for key_path, word in [
            ("name", entry.name),
            *((f"aliases[{j}]", a) for j, a in enumerate(entry.aliases)),
        ]:
            key = comparison_key(word)
            if not key:
                problems.add(f"{path}[{i}].{key_path}", "must not be empty")
            elif key in seen and seen[key] != i:
                problems.add(
                    f"{path}[{i}].{key_path}", f"{word!r} is already used by {entries[seen[key]].name}"
                )
            else:
                seen[key] = i


class NamedEntry(Section):
    """Anything people pick by name: the canonical `name` plus `aliases` they may type instead."""

    name: str
    aliases: list[str] = Field(default_factory=list)

    @functools.cached_property
    def keys(self) -> frozenset[str]:
        """The folded name and aliases (a section is frozen: folded once)."""
        return frozenset(comparison_key(w) for w in (self.name, *self.aliases)) - {""}


_Entry = TypeVar("_Entry", bound="NamedEntry")


def find_named(entries: Iterable[_Entry], text: str) -> _Entry | None:
    key = comparison_key(text)  # folded once, not once for each entry (a form looks up a dozen names)
    return next((e for e in entries if key in e.keys), None)


# I-L-U-O skill levels and role codes as config values: the vocabulary's enums, so that a wrong value
# is reported with the list of right ones. YAML reads a bare 0 as a number, hence str().
LevelCode = Annotated[SkillLevel, BeforeValidator(lambda v: str(v).upper())]
Period = Literal["week", "month", "quarter", "year"]
RoleCode = Role
NonNegative = Annotated[float, Field(ge=0)]


def roles(*codes: RoleCode) -> list[RoleCode]:
    return list(codes)


def certification_defaults() -> dict[SkillLevel, float]:
    return {SkillLevel.U: 3.0, SkillLevel.O: 5.0}


def level_rank(level: str) -> int:
    """Position of an I-L-U-O level (0 for untrained … 4 for O), for comparisons like `>= U`."""
    return ILUO_ORDER.index(str(level).upper())


# --- spine ----------------------------------------------------------------------------------------


class WeComConfig(Section):
    corp_id: str = ""
    agent_id: int | None = None
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = DEFAULT_API_BASE

    @property
    def configured(self) -> bool:
        """True when real credentials are present; otherwise `serve` starts in local mode."""
        return bool(self.corp_id and self.secret)

    @field_validator("agent_id", mode="before")
    @classmethod
    def _empty_agent_is_none(cls, v: Any) -> Any:
        # `${WECOM_AGENT_ID:-}` yields "" in local mode; that means "not configured", not a bad number.
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("api_base")
    @classmethod
    def _api_root(cls, v: str) -> str:
        # wechatpy and most WeCom documents write the base with /cgi-bin; the client adds it itself.
        from bot.wecom.client import api_root

        root = api_root(v)
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", root):
            raise ValueError(f"must be an http(s) URL such as {DEFAULT_API_BASE}, got {v!r}")
        return root

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9]{43}", v):
            raise ValueError("must be 43 letters or digits (the EncodingAESKey from the WeCom admin console)")
        return v


DEFAULT_AIBOT_WS_URL = "wss://openws.work.weixin.qq.com"


class AibotConfig(Section):
    """The WeCom AI bot (智能机器人) in API mode over its long connection (docs/aibot.md)."""

    bot_id: str = ""
    secret: str = ""
    ws_url: str = DEFAULT_AIBOT_WS_URL
    # Timing of the connection; the defaults are the official SDK's (tests shorten them).
    ping_seconds: float = Field(default=30.0, gt=0)
    reconnect_base_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=30.0, gt=0)
    ack_timeout_seconds: float = Field(default=5.0, gt=0)
    # One process holds the connection: a lease row renewed this often, taken over once it expires.
    lease_renew_seconds: float = Field(default=10.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    # After WeCom said another connection took over (disconnected_event): wait this long before
    # connecting again, so that two deployments of the same bot do not kick each other in a loop.
    kicked_pause_seconds: float = Field(default=600.0, gt=0)
    per_chat_per_minute: int = Field(default=30, ge=1)
    # Commands whose answer a group chat sees in full; any other answers there briefly and goes to
    # the sender's private chat (dialogues and personal data stay private).
    group_commands: list[str] = Field(default_factory=lambda: ["排行", "帮助"])

    @property
    def configured(self) -> bool:
        return bool(self.bot_id and self.secret)

    @field_validator("ws_url")
    @classmethod
    def _ws_scheme(cls, v: str) -> str:
        if not re.fullmatch(r"wss?://[^\s/?#]+(/[^\s]*)?", v):
            raise ValueError(f"must be a ws:// or wss:// URL such as {DEFAULT_AIBOT_WS_URL}, got {v!r}")
        return v


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    callback_path: str = "/wecom/callback"
    max_clock_skew: int = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    public_url: str = ""
    # `serve` answers the callback's HTTP in a front process of its own (bot/front.py): "auto" (with
    # SQLite on a machine with more than one core), "on", "off".
    callback_process: Literal["auto", "on", "off"] = "auto"


class DatabaseConfig(Section):
    url: str = "sqlite:///data/pioneer.db"
    busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=10, ge=1)
    batch_max: int = Field(default=64, ge=1)
    readers: int = Field(default=2, ge=0, le=16)
    read_apart_ms: float = Field(default=5.0, ge=0)


class HandlerConfig(Section):
    budget_seconds: float = Field(default=3.0, gt=0, le=4.5)
    form_ttl_minutes: int = Field(default=30, ge=1)


class OutboxConfig(Section):
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=8, ge=1)
    per_member_per_minute: int = Field(default=30, ge=1)
    # WeCom drops, without an error, app messages past 1,000 an hour to one member.
    per_member_per_hour: int = Field(default=1000, ge=1)
    per_webhook_per_minute: int = Field(default=20, ge=1)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # Processes drawing pictures (Image.drawn) beside the bot; 0 draws them in a thread of the bot.
    draw_processes: int = Field(default=1, ge=0, le=8)
    # The group robot told when app messages cannot be sent at all (robots need no access token).
    alert_group: str = ""


class GroupConfig(Section):
    webhook: str
    description: str = ""

    @field_validator("webhook")
    @classmethod
    def _looks_like_url(cls, v: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+\S*", v):
            raise ValueError("must be an http(s) URL (the group robot's webhook address)")
        return v


class ScheduleConfig(Section):
    name: str
    cron: str
    job: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    grace_minutes: int = Field(default=60, ge=0)
    description: str = ""
    # workdays: not on statutory holidays, but on 调休 make-up Saturdays and Sundays; every_day: always.
    # None: the job's own default (`@job(name, calendar=...)`; see docs/configuration.md).
    calendar: Literal["workdays", "every_day"] | None = None

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, v: str) -> str:
        from bot.cron import crontab_trigger

        try:
            crontab_trigger(v)
        except ValueError as exc:
            raise ValueError(f"not a cron expression ({exc})") from None
        return v


_HHMM = r"(?:[01]?\d|2[0-3]):[0-5]\d"
QUIET_PATTERN = re.compile(rf"\s*({_HHMM})\s*[-–~～至到]\s*({_HHMM})\s*")


def check_quiet_window(v: str) -> str:
    """ "21:30-07:30" (a window may pass midnight) or "" for none; returned as written, normalised."""
    v = unicodedata.normalize("NFKC", v).strip()
    if not v:
        return ""
    m = QUIET_PATTERN.fullmatch(v)
    if m is None or m[1] == m[2]:
        raise ValueError(f"must be a window like 21:30-07:30 (or empty for none), got {v!r}")
    return "-".join(f"{int(h):02d}:{mm}" for h, mm in (t.split(":") for t in (m[1], m[2])))


class CalendarConfig(Section):
    """Overrides of the official working calendar (`chinesecalendar`), which win over it: for a year
    the library does not know yet, or a workshop's own arrangement."""

    holidays: list[date] = Field(default_factory=list)  # days off, e.g. 2027-10-01
    workdays: list[date] = Field(default_factory=list)  # working days, e.g. a 调休 Saturday

    @model_validator(mode="after")
    def _not_both(self) -> CalendarConfig:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"{', '.join(map(str, both))} listed both as holiday and as workday")
        return self


class DirectoryDepartment(Section):
    """Where the people of one WeCom department belong: a branch and/or a team (names as in the CSV)."""

    branch: str = ""
    team: str = ""


class DirectoryConfig(Section):
    """`python -m bot members sync` and the `directory_sync` job: WeCom departments (by id, or by name
    where the API gives names) mapped to branches and teams."""

    departments: dict[str, DirectoryDepartment] = Field(default_factory=dict)
    root_department: int = Field(default=1, ge=1)  # whose members (with sub-departments) are synced

    @field_validator("departments", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v


class LoggingConfig(Section):
    level: str = "INFO"
    json_lines: bool = Field(default=False, alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BoardScreen(Section):
    """One 党建看板 screen: who may open it (its token) and what it shows (a branch, or the workshop)."""

    name: str
    token: str = Field(min_length=16)
    branch: str = ""  # a branch's name as in the member list; empty: the whole workshop


class BoardConfig(Section):
    """The live 党建看板 at `path`: `token` opens the workshop's board, `boards` adds scoped ones."""

    path: str = "/board/"
    token: str = ""
    boards: list[BoardScreen] = Field(default_factory=list)
    rotate_seconds: int = Field(default=20, ge=5)
    check_seconds: float = Field(default=2.0, gt=0)  # how often commits by other processes are looked for
    top: int = Field(default=10, ge=3, le=30)

    @field_validator("path")
    @classmethod
    def _path_shape(cls, v: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9_\-/]*", v):
            raise ValueError("must be a path such as /board/")
        return v if v.endswith("/") else v + "/"

    @field_validator("token")
    @classmethod
    def _token_length(cls, v: str) -> str:
        if v and len(v) < 16:
            raise ValueError("must be at least 16 characters (e.g. from `openssl rand -hex 16`)")
        return v

    @model_validator(mode="after")
    def _tokens_unique(self) -> BoardConfig:
        problems = Problems()
        seen = {self.token} if self.token else set()
        names: set[str] = set()
        for i, screen in enumerate(self.boards):
            if screen.token in seen:
                problems.add(f"boards[{i}].token", "is already used by another board")
            if screen.name in names:
                problems.add(f"boards[{i}].name", f"duplicate board name {screen.name!r}")
            seen.add(screen.token)
            names.add(screen.name)
        problems.raise_if_any()
        return self

    @property
    def screens(self) -> list[BoardScreen]:
        """Every configured board; `token` alone is the workshop's."""
        own = [BoardScreen(name="车间", token=self.token)] if self.token else []
        return own + list(self.boards)

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.boards)


# --- the whole file: the spine, and the sections the practices register --------------------------

SectionT = TypeVar("SectionT", bound="PracticeSection")
SECTIONS: dict[str, type[PracticeSection]] = {}


class PracticeSection(Section):
    """A practice's own part of `config.yaml` (points, skills, publicity …), declared next to its
    handlers and registered with `@config_section("key")`. Validated alone first; `references` then
    checks what it names in other sections (e.g. an indicator code), with paths from the top."""

    key: ClassVar[str] = ""

    def references(self, config: Config) -> list[tuple[str, str]]:
        return []

    @classmethod
    def of(cls: type[SectionT], config: Config) -> SectionT:
        """This section of a loaded configuration, typed: `PointsConfig.of(ctx.config)`."""
        return config.section(cls)


def config_section(key: str) -> Callable[[type[SectionT]], type[SectionT]]:
    """Register a practice's section under its top-level key in `config.yaml`."""

    def register(model: type[SectionT]) -> type[SectionT]:
        if SECTIONS.get(key, model) is not model:
            raise ValueError(f"config section {key!r} registered twice")
        model.key = key
        SECTIONS[key] = model
        return model

    return register


class Config(Section):
    """The runtime's settings. The practices' sections are added as fields when the file is parsed
    (see `parse_config`); read them with `Section.of(config)`."""

    wecom: WeComConfig = WeComConfig()
    aibot: AibotConfig = AibotConfig()
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    timezone: str = "Asia/Shanghai"
    handlers: HandlerConfig = HandlerConfig()
    outbox: OutboxConfig = OutboxConfig()
    logging: LoggingConfig = LoggingConfig()
    admins: list[str] = Field(default_factory=list)
    groups: dict[str, GroupConfig] = Field(default_factory=dict)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    calendar: CalendarConfig = CalendarConfig()
    # Pushes that are not answers to the one who wrote wait through this window (see bot/outbox.py).
    quiet_hours: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = "21:30-07:30"
    directory: DirectoryConfig = DirectoryConfig()
    board: BoardConfig = BoardConfig()

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_window(cls, v: str) -> str:
        return check_quiet_window(v)

    @property
    def channels(self) -> list[str]:
        """The channels that will run: "app" (self-built app), "aibot" (AI bot long connection)."""
        return [name for name, on in (("app", self.wecom.configured), ("aibot", self.aibot.configured)) if on]

    @property
    def personal_channel(self) -> str:
        """Where pushes to one member go: the app when it is configured, else the AI bot."""
        return "aibot" if self.aibot.configured and not self.wecom.configured else "app"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _references(self) -> Config:
        """Groups named by schedules, then what each practice's section names elsewhere."""
        problems = Problems()
        names: set[str] = set()
        for i, s in enumerate(self.schedules):
            if s.name in names:
                problems.add(f"schedules[{i}].name", f"duplicate schedule name {s.name!r}")
            names.add(s.name)
            for key in ("group", "groups"):
                if key not in s.arguments:
                    continue
                value = s.arguments[key]
                path = f"schedules[{i}].arguments.{key}"
                if isinstance(value, str):
                    items = [(path, value)]
                elif isinstance(value, list):
                    items = [(f"{path}[{j}]", v) for j, v in enumerate(value)]
                else:
                    problems.add(path, "must be a group name or a list of group names")
                    continue
                for item_path, group in items:
                    if not isinstance(group, str) or group not in self.groups:
                        known = ", ".join(self.groups) or "none"
                        problems.add(item_path, f"unknown group {group!r} (configured: {known})")
        for key in SECTIONS:
            section = getattr(self, key, None)
            if isinstance(section, PracticeSection):
                for path, message in section.references(self):
                    problems.add(path, message)
        problems.raise_if_any()
        return self

    @model_validator(mode="after")
    def _alert_group_exists(self) -> Config:
        group = self.outbox.alert_group
        if group and group not in self.groups:
            problems = Problems()
            known = ", ".join(self.groups) or "none"
            problems.add("outbox.alert_group", f"unknown group {group!r} (configured: {known})")
            problems.raise_if_any()
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def section(self, model: type[SectionT]) -> SectionT:
        """A practice's section; its defaults when the file leaves it out."""
        found = getattr(self, model.key, None)
        if not isinstance(found, model):
            raise LookupError(f"config section {model.key!r} is not loaded; import its practice first")
        return found

    def schedule(self, name: str) -> ScheduleConfig | None:
        """A declared schedule by name (for `jobs run NAME`)."""
        return next((s for s in self.schedules if s.name == name), None)


@functools.lru_cache(maxsize=8)
def _with_sections(keys: tuple[str, ...]) -> type[Config]:
    """The model of the whole file: the spine plus every registered section, each with its defaults."""
    fields: dict[str, Any] = {key: (SECTIONS[key], SECTIONS[key]()) for key in keys}
    return create_model("PioneerConfig", __base__=Config, **fields)


def load_practices() -> None:
    """Import the practices so that their sections (and commands, jobs and kinds) are registered."""
    importlib.import_module(PRACTICES_PACKAGE)


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as `key.path: what is wrong`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, path: str, problems: list[str], env: dict[str, str]) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: substitute_env(v, _join(path, str(k)), problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, f"{path}[{i}]", problems, env) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return _ENV_PATTERN.sub(repl, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_MESSAGES = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
}

# Messages that need a value from the error's context, e.g. the bound that was crossed.
_TEMPLATES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
}


def format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
        ctx = err.get("ctx") or {}
        if err["type"] == "config_problems":
            for sub, message in ctx["problems"]:
                full = path + sub if sub.startswith("[") else _join(path, sub)
                problems.append(f"{full or '(top level)'}: {message}")
            continue
        message = _MESSAGES.get(err["type"])
        if message is None and err["type"] in _TEMPLATES:
            message = _TEMPLATES[err["type"]].format(**{k: _plain(v) for k, v in ctx.items()})
        if message is None:
            message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{path or '(top level)'}: {message}")
    return problems


def _plain(value: Any) -> Any:
    """Bounds arrive as floats (`0.0`); show `0` the way the YAML author wrote it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_config(raw: Any, env: dict[str, str] | None = None) -> Config:
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping of keys to values"])
    data = substitute_env(raw, "", problems, dict(os.environ) if env is None else env)
    try:
        load_practices()
        config = _with_sections(tuple(SECTIONS)).model_validate(data)
    except ValidationError as exc:
        problems.extend(format_validation_error(exc))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def config_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG_PATH)


# libyaml's safe loader where PyYAML was built with it (its wheels are): the same documents and
# errors, parsed in 8 ms instead of 70 (config.yaml, measured), which every start paid.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    return parse_config(_read_yaml(path), env)


def _read_yaml(path: str | Path | None) -> Any:
    p = config_path(str(path) if path else None)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError([f"{p}: not valid YAML ({exc})"]) from None


class EarlySections(NamedTuple):
    server: ServerConfig
    wecom: WeComConfig
    database: DatabaseConfig


def read_sections(path: str | Path | None, env: dict[str, str] | None = None) -> EarlySections:
    """The `server`, `wecom` and `database` sections alone, validated, before the practices are
    imported and the rest is checked (`serve` binds its port and starts its front process with them).
    ConfigError for any problem: `load_config` then reports it with the rest."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping of keys to values"])
    problems: list[str] = []
    names = ("server", "wecom", "database")
    data = substitute_env(
        {k: raw.get(k) or {} for k in names}, "", problems, dict(os.environ) if env is None else env
    )
    if problems:
        raise ConfigError(problems)
    try:
        return EarlySections(
            ServerConfig.model_validate(data["server"]),
            WeComConfig.model_validate(data["wecom"]),
            DatabaseConfig.model_validate(data["database"]),
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
