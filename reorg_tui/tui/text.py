"""File names are user data: shown literally, never as markup, never as terminal codes."""

from __future__ import annotations

import time

import humanize
from rich.text import Text

from reorg_tui.names import safe


def literal(value: str, style: str = "") -> Text:
    """A name as plain text: markup stays visible, control characters are escaped."""
    return Text(safe(value), style=style, no_wrap=True, overflow="ellipsis")


def size(n: float) -> str:
    return humanize.naturalsize(n, binary=True, format="%.1f")


def count(n: float) -> str:
    return humanize.intcomma(int(n)) if n < 10_000 else humanize.intword(int(n), format="%.1f")


def rate(n: float) -> str:
    return f"{n:,.1f}" if n < 1000 else f"{n:,.0f}"


def uptime(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def age(seconds: float) -> str:
    return humanize.naturaldelta(seconds)


def stamp(when: float) -> str:
    """A moment in full, as a details view shows it."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
