"""Charts as PNG images for chat: one house style (colours, the CJK font, sizes) and the pictures built
on it: the 多能工训练表's ILUO matrix, a generic table (the quarterly 党建考评 posts one) and a
horizontal bar chart with ranks and changes (the ranking broadcast posts one). Each reuses `font`,
`canvas`, `to_png` and the palette so that every picture looks the same.

Pictures are drawn inside a handler's transaction (there is no handing them off the event loop there),
so they are drawn with Pillow directly rather than through a plotting library: the five ILUO symbols
are drawn once, supersampled, and pasted into each cell. A 60 × 13 matrix takes a few tens of
milliseconds (`bench/skills_matrix.py`, docs/PERFORMANCE.md); matplotlib took about a second.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bot.pictures import PictureError, renderer

# -- the house style ------------------------------------------------------------------------------

INK = (31, 41, 51)  # text and symbols
MUTED = (123, 135, 148)  # secondary text, rules
PARTY_RED = (200, 16, 46)  # headings and what needs attention
GAP_FILL = (253, 232, 232)  # a cell below its target
HEADER_FILL = (245, 247, 250)
EXPIRED = (170, 178, 189)  # a level that lapsed without re-certification
WHITE = (255, 255, 255)
GOLD = (232, 182, 76)  # the first three places
PALE_GOLD = (246, 227, 180)
BAR_FILL = (226, 120, 128)  # a bar past the first three places
FALLING = (47, 125, 85)  # ↓ against the previous period
MAX_BYTES = 2 * 1024 * 1024  # group robots take images up to 2 MB

# Where fonts-noto-cjk (what .ci/run installs) and other CJK fonts live when fontconfig cannot say.
_KNOWN_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


class ChartError(PictureError):
    """A chart cannot be drawn here (no CJK font, too big to send); the message says what to do."""


@lru_cache(maxsize=1)
def font_file() -> tuple[str, int]:
    """(path, face index) of a font that draws Simplified Chinese, asked of fontconfig first."""
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}\n%{index}\n%{lang}", "sans-serif:lang=zh-cn"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.split("\n")
            if len(out) >= 3 and "zh-cn" in out[2].split("|") and Path(out[0]).exists():
                return out[0], int(out[1] or 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    for path in _KNOWN_FONTS:
        if Path(path).exists():
            return path, _sc_face(path)
    raise ChartError(
        "没有找到可显示中文的字体，无法生成图片。请管理员安装中文字体（Debian/Ubuntu：apt-get install "
        "fonts-noto-cjk）后重启。"
    )


def _sc_face(path: str) -> int:
    """The Simplified Chinese face of a font collection (Noto's .ttc starts with the Japanese one)."""
    for index in range(12):
        try:
            face = ImageFont.truetype(path, 12, index=index)
        except OSError:
            break
        if "SC" in " ".join(face.getname()):
            return index
    return 0


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont:
    path, index = font_file()
    return ImageFont.truetype(path, size, index=index)


def canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    picture = Image.new("RGB", (width, height), WHITE)
    return picture, ImageDraw.Draw(picture)


def to_png(picture: Image.Image) -> bytes:
    buf = io.BytesIO()
    # Fast compression: mostly flat colour compresses well anyway, and the time is spent in the handler.
    picture.save(buf, format="PNG", compress_level=3)
    data = buf.getvalue()
    if len(data) > MAX_BYTES:
        raise ChartError("图片超过 2 MB，无法发送，请缩小范围（例如按班组查看）。")
    return data


# -- the ILUO matrix ------------------------------------------------------------------------------

CELL = 30  # px
NAME_W = 96
SYMBOL = 20  # the symbol's diameter
LEVEL_NAMES = ("未培训", "I 培训中", "L 监护下操作", "U 独立上岗", "O 可教他人")  # 0–4


@lru_cache(maxsize=32)
def symbol(
    level: int, background: tuple[int, int, int] = WHITE, colour: tuple[int, int, int] = INK
) -> Image.Image:
    """The ILUO symbol for 0–4: a circle with a quarter of it filled per level, clockwise from noon.

    Drawn 4× larger and scaled down once, so that the edges are smooth; cached per background."""
    big = SYMBOL * 4
    tile = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(tile)
    box = (4, 4, big - 5, big - 5)
    draw.ellipse(box, fill=WHITE, outline=colour, width=6)
    if level >= 4:
        draw.ellipse(box, fill=colour)
    elif level > 0:
        draw.pieslice(box, -90, -90 + 90 * level, fill=colour)  # Pillow's angles run clockwise from 3 o'clock
    return tile.resize((SYMBOL, SYMBOL), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Matrix:
    """What the 多能工训练表 picture shows: people × posts with a level 0–4 (0 untrained … 4 O)."""

    title: str
    people: Sequence[str]
    posts: Sequence[str]  # short names, drawn vertically (one character under the other)
    levels: Sequence[Sequence[int]]  # [person][post], 0–4
    below_target: Sequence[Sequence[bool]]  # [person][post]: the cell is under the member's target
    expired: Sequence[Sequence[bool]]  # [person][post]: the level lapsed (drawn grey, not counted)
    coverage: Sequence[str]  # per post, e.g. "3/4"
    short: Sequence[bool]  # per post: fewer qualified than the ideal number

    def data(self) -> dict[str, Any]:
        """The fields for `Image.drawn`, each person's cells as one string of digits ("0312…", "0110…"):
        a 200-person matrix is 10 KB of JSON instead of 50 (written with the answer, read back by the
        outbox), and `dataclasses.asdict` would deep-copy every cell (16 ms for a team of 200)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _CELLS:
            data[name] = ["".join(map(str, map(int, row))) for row in data[name]]  # True → "1"
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Matrix:
        """The matrix `data()` describes (rows written as lists of cells, as before, are read too)."""
        fixed = dict(data)
        for name, cell in _CELLS.items():
            fixed[name] = [[cell(c) for c in row] if isinstance(row, str) else row for row in data[name]]
        return cls(**fixed)


_CELLS: dict[str, Callable[[str], Any]] = {
    "levels": int,
    "below_target": lambda c: c == "1",
    "expired": lambda c: c == "1",
}


def iluo_matrix(m: Matrix) -> bytes:
    """The matrix as a PNG: title, vertical post names, a row per person, coverage and a legend."""
    body, small, title_font = font(14), font(12), font(18)
    head_h = 44 + 15 * max((len(p) for p in m.posts), default=2)
    width = max(NAME_W + CELL * len(m.posts) + 12, 720)  # the legend needs 720
    rows_h = CELL * len(m.people)
    height = head_h + rows_h + CELL + 56
    picture, draw = canvas(width, height)
    draw.text((10, 10), m.title, font=title_font, fill=PARTY_RED)
    draw.rectangle((0, head_h - 4, width, head_h), fill=HEADER_FILL)
    for j, post in enumerate(m.posts):
        x = NAME_W + CELL * j + CELL // 2
        colour = PARTY_RED if m.short[j] else INK
        for k, char in enumerate(post):
            draw.text((x, 42 + 15 * k), char, font=small, fill=colour, anchor="mt")
    offset = (CELL - SYMBOL) // 2
    for i, name in enumerate(m.people):
        y = head_h + CELL * i
        if i % 2:
            draw.rectangle((0, y, width, y + CELL - 1), fill=HEADER_FILL)
        draw.text((10, y + CELL // 2), name, font=body, fill=INK, anchor="lm")
        stripe = HEADER_FILL if i % 2 else WHITE
        for j in range(len(m.posts)):
            x = NAME_W + CELL * j
            background = stripe
            if m.below_target[i][j]:
                background = GAP_FILL
                draw.rectangle((x + 1, y + 1, x + CELL - 2, y + CELL - 2), fill=GAP_FILL)
            colour = EXPIRED if m.expired[i][j] else INK
            picture.paste(symbol(m.levels[i][j], background, colour), (x + offset, y + offset))
    y = head_h + rows_h
    draw.line((0, y, width, y), fill=MUTED, width=1)
    draw.text((10, y + CELL // 2), "合格/理想", font=small, fill=MUTED, anchor="lm")
    for j, text in enumerate(m.coverage):
        x = NAME_W + CELL * j + CELL // 2
        draw.text((x, y + CELL // 2), text, font=small, fill=PARTY_RED if m.short[j] else INK, anchor="mm")
    y += CELL + 12
    x = 10
    for level, label in enumerate(LEVEL_NAMES):
        picture.paste(symbol(level), (x, y))
        draw.text((x + SYMBOL + 4, y + SYMBOL // 2), label, font=small, fill=MUTED, anchor="lm")
        x += SYMBOL + 16 + int(draw.textlength(label, font=small))
    draw.rectangle((x, y + 2, x + SYMBOL, y + SYMBOL - 2), fill=GAP_FILL)
    draw.text((x + SYMBOL + 4, y + SYMBOL // 2), "低于目标", font=small, fill=MUTED, anchor="lm")
    x += SYMBOL + 16 + int(draw.textlength("低于目标", font=small))
    picture.paste(symbol(3, WHITE, EXPIRED), (x, y))
    draw.text((x + SYMBOL + 4, y + SYMBOL // 2), "已过期", font=small, fill=MUTED, anchor="lm")
    return to_png(picture)


# -- a table ----------------------------------------------------------------------------------------

TABLE_PAD = 12  # px around each cell's text
TABLE_ROW = 34  # px


def table_png(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], note: str = "") -> bytes:
    """A PNG of a table: `title` above, a party-red header, striped rows, `note` below in grey."""
    body, bold, title_font, small = font(15), font(15), font(20), font(12)
    cells = [[str(c) for c in row] for row in rows]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [
        int(max([probe.textlength(h, font=bold), *(probe.textlength(r[i], font=body) for r in cells)]))
        + 2 * TABLE_PAD
        for i, h in enumerate(header)
    ]
    width = max(sum(widths) + 2 * TABLE_PAD, int(probe.textlength(title, font=title_font)) + 2 * TABLE_PAD)
    top = 56
    height = top + TABLE_ROW * (len(cells) + 1) + (40 if note else 16)
    picture, draw = canvas(width, height)
    draw.text((TABLE_PAD, 16), title, font=title_font, fill=PARTY_RED)
    x0 = TABLE_PAD
    draw.rectangle((x0, top, x0 + sum(widths), top + TABLE_ROW), fill=PARTY_RED)
    for i, row in enumerate([list(header), *cells]):
        y = top + TABLE_ROW * i
        if i and i % 2 == 0:
            draw.rectangle((x0, y, x0 + sum(widths), y + TABLE_ROW), fill=HEADER_FILL)
        x = x0
        for j, text in enumerate(row):
            colour = WHITE if i == 0 else INK
            draw.text(
                (x + widths[j] // 2, y + TABLE_ROW // 2),
                text,
                font=bold if i == 0 else body,
                fill=colour,
                anchor="mm",
            )
            x += widths[j]
    bottom = top + TABLE_ROW * (len(cells) + 1)
    draw.line((x0, bottom, x0 + sum(widths), bottom), fill=MUTED, width=1)
    if note:
        draw.text((TABLE_PAD, bottom + 12), note, font=small, fill=MUTED)
    return to_png(picture)


# -- a ranking as bars --------------------------------------------------------------------------------

BAR_ROW = 46  # px
BAR_WIDTH = 960  # px, the whole picture


@dataclass(frozen=True)
class Bar:
    """One ranked row: its rank, name, the value its bar's length shows, how the value reads, the
    move against the previous period (↑2, ↓1, –, 新) and a short detail after the name."""

    rank: int
    name: str
    value: float
    label: str
    change: str = ""
    detail: str = ""


def _change_colour(change: str) -> tuple[int, int, int]:
    if change.startswith("↑"):
        return PARTY_RED
    if change.startswith("↓"):
        return FALLING
    if change == "新":
        return GOLD
    return MUTED


def bar_chart(title: str, subtitle: str, bars: Sequence[Bar], note: str = "") -> bytes:
    """A PNG of a ranking: a rank badge, the name (and detail), a bar as long as the value against the
    largest, the value, and the change, one row per `bars`; the first three in gold and red."""
    title_font, body, small, bold = font(24), font(18), font(13), font(17)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    name_w = max([int(probe.textlength(b.name, font=body)) for b in bars] + [60])
    detail_w = max([int(probe.textlength(b.detail, font=small)) for b in bars if b.detail] + [0])
    x_name = 64
    x_bar = x_name + name_w + (detail_w + 10 if detail_w else 0) + 18
    x_change = BAR_WIDTH - 64
    bar_max = max(x_change - x_bar - 110, 120)
    top = 84
    height = top + BAR_ROW * len(bars) + (44 if note else 20)
    picture, draw = canvas(BAR_WIDTH, height)
    draw.rectangle((0, 0, BAR_WIDTH, 6), fill=PARTY_RED)
    draw.text((24, 20), title, font=title_font, fill=PARTY_RED)
    draw.text((24, 54), subtitle, font=small, fill=MUTED)
    largest = max([b.value for b in bars if b.value > 0] + [1.0])
    for i, b in enumerate(bars):
        y = top + BAR_ROW * i
        middle = y + BAR_ROW // 2
        if i % 2:
            draw.rectangle((0, y, BAR_WIDTH, y + BAR_ROW - 1), fill=HEADER_FILL)
        podium = b.rank <= 3
        draw.ellipse((24, middle - 15, 54, middle + 15), fill=GOLD if podium else PALE_GOLD)
        draw.text((39, middle), str(b.rank), font=bold, fill=PARTY_RED if podium else INK, anchor="mm")
        draw.text((x_name, middle), b.name, font=body, fill=INK, anchor="lm")
        if b.detail:
            draw.text((x_name + name_w + 10, middle + 1), b.detail, font=small, fill=MUTED, anchor="lm")
        length = int(bar_max * max(b.value, 0) / largest)
        if length:
            draw.rounded_rectangle(
                (x_bar, middle - 11, x_bar + length, middle + 11),
                radius=6,
                fill=PARTY_RED if podium else BAR_FILL,
            )
        draw.text((x_bar + length + 10, middle), b.label, font=bold, fill=INK, anchor="lm")
        if b.change:
            draw.text(
                (x_change + 20, middle), b.change, font=bold, fill=_change_colour(b.change), anchor="mm"
            )
    bottom = top + BAR_ROW * len(bars)
    draw.line((24, bottom, BAR_WIDTH - 24, bottom), fill=MUTED, width=1)
    if note:
        draw.text((24, bottom + 14), note, font=small, fill=MUTED)
    return to_png(picture)


@renderer("iluo_matrix")
def _draw_iluo_matrix(data: dict[str, Any]) -> bytes:
    """The 多能工训练表 drawn when it is sent (`Image.drawn(..., "iluo_matrix", matrix.data())`)."""
    return iluo_matrix(Matrix.from_data(data))


@renderer("bar_chart")
def _draw_bar_chart(data: dict[str, Any]) -> bytes:
    """A ranking's bars drawn when they are sent (`Image.drawn(..., "bar_chart", {...})`)."""
    bars = [Bar(**b) for b in data["bars"]]
    return bar_chart(data["title"], data["subtitle"], bars, data.get("note", ""))


@renderer("table")
def _draw_table(data: dict[str, Any]) -> bytes:
    """A table drawn when it is sent (the 党建考评 post)."""
    return table_png(data["title"], data["header"], data["rows"], data.get("note", ""))
