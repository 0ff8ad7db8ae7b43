"""免打扰: a member's own quiet hours. Pushes that are not answers to what they just typed (reminders,
digests, approval cards, notices) wait through them; see `bot.outbox.QuietRule` for the rule."""

from __future__ import annotations

from bot.context import Context, Sender
from bot.forms import half_width
from bot.quiet import parse_window
from bot.router import Router
from storage import quiet as store

router = Router("quiet")

OFF_WORDS = ("关闭", "关", "off", "无", "不要")
DEFAULT_WORDS = ("默认", "恢复", "default")


def describe(ctx: Context, own: str | None) -> str:
    workshop = ctx.config.quiet_hours
    if own is None:
        return f"车间默认 {workshop}" if workshop else "车间未设免打扰时段，消息随时送达"
    if own == "":
        return "已关闭（提醒随时送达）"
    return f"{own}（你自己设的）"


@router.command("免打扰", code="quiet", aliases=("勿扰",))
def quiet(ctx: Context, member: Sender, args: str) -> str:
    """设置自己的免打扰时段（倒班时用）：时段内的提醒、待审卡片和通知留到时段结束再发，回复你的消息不受影响。
    示例：「免打扰 22:00-06:00」「免打扰 关闭」（随时送达）「免打扰 默认」（用车间的时段）；
    只发「免打扰」查看当前设置。"""
    word = half_width(args).strip()
    if not word:
        current = describe(ctx, member.quiet_hours)
        return (
            f"你的免打扰时段：{current}。\n"
            "修改：「免打扰 22:00-06:00」，关闭：「免打扰 关闭」，恢复车间默认：「免打扰 默认」。"
        )
    if word.lower() in OFF_WORDS:
        store.set_quiet_hours(ctx.session, member.id, "")
        return "已关闭免打扰：提醒和通知随时送达。恢复车间默认请发「免打扰 默认」。"
    if word.lower() in DEFAULT_WORDS:
        store.set_quiet_hours(ctx.session, member.id, None)
        return f"已恢复车间默认：{describe(ctx, None)}。"
    try:
        window = parse_window(word)
    except ValueError:
        window = None
    if window is None:
        return (
            f"没看懂「{word}」。请写开始和结束时间，例如「免打扰 22:00-06:00」"
            "（可跨过午夜，开始和结束不能相同），或「免打扰 关闭」「免打扰 默认」。"
        )
    store.set_quiet_hours(ctx.session, member.id, str(window))
    return (
        f"已设置免打扰 {window}：这段时间里的提醒和通知会在 {window.end:%H:%M} 后送达，你发的命令照常回复。"
    )


@router.profile_section
def my_quiet_hours(ctx: Context) -> str:
    assert ctx.member is not None
    return f"免打扰：{describe(ctx, ctx.member.quiet_hours)}"  # read with the sender, this message
