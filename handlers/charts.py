"""Pictures for group robots and chats: a table rendered to PNG with matplotlib, in one house style.

Generic on purpose (a title, a header, rows, an optional note); practices pass their own content. The
Chinese font is looked up among the fonts installed on the machine; without one the text would come
out as boxes, so rendering fails with the Debian package to install.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

from matplotlib import font_manager  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

# The house style: one place to change how every table picture looks.
HEADER_COLOUR = "#c0392b"  # 党建红
HEADER_TEXT = "#ffffff"
STRIPE = "#fbeeee"
GRID = "#e0c8c8"
NOTE_COLOUR = "#666666"
FONT_SIZE = 11
ROW_HEIGHT = 0.42  # inches
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
)


class MissingFont(RuntimeError):
    """No font that can draw Chinese is installed."""


@functools.cache
def cjk_font() -> str:
    """The name of an installed font that draws Chinese."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            return name
    raise MissingFont(
        "没有找到中文字体，表格图片无法生成。请安装 Debian 软件包 fonts-noto-cjk"
        "（apt-get install fonts-noto-cjk），然后重启先锋。"
    )


def _width(text: str) -> float:
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def table_png(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> bytes:
    """A PNG of a table: `title` above, a coloured header, striped rows, `note` below."""
    font = cjk_font()
    columns = [max([_width(header[i]), *(_width(str(r[i])) for r in rows)]) for i in range(len(header))]
    width = max(6.0, sum(columns) * 0.11 + 0.6)
    height = ROW_HEIGHT * (len(rows) + 1) + 1.1 + (0.3 if note else 0)
    fig = plt.figure(figsize=(width, height), dpi=150)
    try:
        fig.text(
            0.5,
            1 - 0.45 / height,
            title,
            ha="center",
            va="center",
            fontsize=FONT_SIZE + 3,
            fontweight="bold",
            family=font,
        )
        top = 1 - 0.8 / height
        bottom = (0.45 if note else 0.15) / height
        ax = fig.add_axes((0.02, bottom, 0.96, top - bottom))
        ax.axis("off")
        table = ax.table(
            cellText=[[str(c) for c in r] for r in rows] or [["" for _ in header]],
            colLabels=list(header),
            colWidths=[c / sum(columns) for c in columns],
            loc="upper center",
            cellLoc="center",
            bbox=(0, 0, 1, 1),
        )
        table.auto_set_font_size(False)
        for (row, _col), cell in table.get_celld().items():
            cell.set_edgecolor(GRID)
            cell.get_text().set_fontfamily(font)
            cell.get_text().set_fontsize(FONT_SIZE)
            if row == 0:
                cell.set_facecolor(HEADER_COLOUR)
                cell.get_text().set_color(HEADER_TEXT)
                cell.get_text().set_fontweight("bold")
            elif row % 2 == 0:
                cell.set_facecolor(STRIPE)
        if note:
            fig.text(
                0.02,
                0.2 / height,
                note,
                ha="left",
                va="center",
                fontsize=FONT_SIZE - 2,
                color=NOTE_COLOUR,
                family=font,
            )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", facecolor="white")
        return buffer.getvalue()
    finally:
        plt.close(fig)
