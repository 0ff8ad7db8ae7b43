"""The commands everyone has: 帮助 (help generated from the registrations) and 我的 (who I am)."""

from __future__ import annotations

from bot.context import Context, Sender
from bot.router import ROLE_NAMES, Router, describe

router = Router("basics")


@router.command("帮助", code="help", aliases=("help", "菜单", "?"), reads=True)
def help_(ctx: Context, member: Sender, args: str) -> str:
    """列出你可以用的命令；「帮助 命令」查看一个命令的说明和示例。"""
    word = args.split()[0] if args.split() else ""
    if word:
        cmd = ctx.router.find(word)
        if cmd is None:
            near = ctx.router.suggest(word, member)
            hint = f"你是不是想看：{'、'.join(near)}？" if near else "发送「帮助」查看全部命令。"
            return f"没有「{word}」这个命令。{hint}"
        refusal = cmd.refusal(member)
        return describe(cmd) + (f"\n（{refusal}）" if refusal else "")
    lines = [f"{member.name}，你可以用这些命令（发送「帮助 命令」看说明和示例）："]
    for cmd in ctx.router.available_to(member):
        lines.append(f"· {cmd.name}：{cmd.gist}")
    lines.append("填写中途发送「取消」可放弃。")
    return "\n".join(lines)


@router.command("我的", code="me", aliases=("我",), reads=True)
def me(ctx: Context, member: Sender) -> str:
    """查看我的信息：本季度积分和排名、待审的申报、最近的积分记录，以及支部、班组和角色。"""
    roles = "、".join(ROLE_NAMES[r] for r in ROLE_NAMES if r in member.roles and r != "member") or "成员"
    lines = [
        f"{member.name}（{member.political_status}）",
        f"支部：{member.branch or '未登记'}",
        f"班组：{member.team or '未登记'}",
    ]
    if member.party_group:
        lines.append(f"党小组：{member.party_group}")
    if member.module:
        lines.append(f"宣传模块：{member.module}")
    lines.append(f"角色：{roles}")
    for section in ctx.router.profile_sections:
        text = section(ctx)
        if text:
            lines.append(text)
    return "\n".join(lines)
