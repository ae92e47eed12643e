"""File name -> date -> destination folder, and free names for collisions."""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import string
from dataclasses import dataclass
from enum import Enum

from reorg_tui.engine.errors import ReorgError
from reorg_tui.engine.shard import Shard

NAME_MAX = 255  # bytes, on every Linux filesystem we write to
DATE_GROUPS = ("year", "month", "day")


class NamingError(ReorgError, ValueError):
    """The pattern or layout setting cannot be used; names the setting, so a face can name its flag."""

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(f"{setting} {detail}")
        self.setting = setting
        self.detail = detail


class InvalidDate(ValueError):
    """A name matches the pattern but its date does not exist (2024-02-30)."""


class NotTaken(Enum):
    """Why the settings do not take a file at some path below the source (as a scan would
    not list it): what a file remembered from an earlier run is checked against."""

    SUBFOLDER = "it is in a subfolder, and --recursive is off"
    IGNORED_FOLDER = "a folder on its way matches --ignore"
    IGNORED = "its name matches --ignore"
    NO_DATE = "its name does not match --pattern"
    OTHER_SHARD = "its path hashes to another shard than --shard"


@dataclass(frozen=True)
class Target:
    folder: str  # relative to DEST, "/"-separated, never absolute, never "..".
    date: dt.date


class Naming:
    """Decides, from a file name alone, whether and where a file goes; and, with a shard, from
    its path below the source, whether it is this instance's (``owns``)."""

    def __init__(
        self, pattern: str, layout: str, ignore: tuple[str, ...], shard: Shard | None = None
    ) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise NamingError("pattern", f"{pattern!r} is not a valid regex: {exc}") from None
        missing = [g for g in DATE_GROUPS if g not in self.regex.groupindex]
        if missing:
            raise NamingError("pattern", f"{pattern!r} lacks the named group(s) {', '.join(missing)}")
        self.layout = layout
        _check_layout(layout)
        self.ignore = ignore
        globs = "|".join(fnmatch.translate(g) for g in ignore)
        self._ignored = re.compile(globs) if globs else None
        self._groups = tuple(self.regex.groupindex[g] for g in DATE_GROUPS)
        self._targets: dict[tuple[str, ...], Target] = {}  # (year, month, day) -> its target
        self.shard = shard

    def is_ignored(self, name: str) -> bool:
        """Hidden, temporary or otherwise excluded by the ignore globs."""
        return self._ignored is not None and self._ignored.match(name) is not None

    def wants(self, name: str) -> bool:
        """True for a name this tool takes: not ignored, and matching the date pattern."""
        return not self.is_ignored(name) and self.regex.search(name) is not None

    def owns(self, rel: str) -> bool:
        """Whether the file at ``rel`` ("/"-separated, below the source) is this instance's:
        always, unsharded; with --shard K/N, when its path hashes to K (shard.py)."""
        return self.shard is None or self.shard.owns(rel)

    def not_taken(self, rel: str, recursive: bool) -> NotTaken | None:
        """Why a scan with these settings would not take the file at ``rel`` ("/"-separated,
        below the source), or None if it would."""
        *folders, name = rel.split("/")
        if folders and not recursive:
            return NotTaken.SUBFOLDER
        if any(self.is_ignored(folder) for folder in folders):
            return NotTaken.IGNORED_FOLDER
        if self.is_ignored(name):
            return NotTaken.IGNORED
        if self.regex.search(name) is None:
            return NotTaken.NO_DATE
        if not self.owns(rel):
            return NotTaken.OTHER_SHARD
        return None

    def target(self, name: str) -> Target:
        """The destination folder of a wanted name; InvalidDate if its date does not exist."""
        match = self.regex.search(name)
        if match is None:
            raise ValueError(f"{name!r} does not match the pattern")
        date = match.group(*self._groups)
        target = self._targets.get(date)
        if target is None:
            if len(self._targets) >= 4096:
                self._targets.clear()  # bounded; a clear costs one render per date afterwards
            target = self._targets[date] = self._render(*date)
        return target

    def _render(self, year: str, month: str, day: str) -> Target:
        try:
            date = dt.date(int(year), int(month), int(day))
        except (TypeError, ValueError):
            raise InvalidDate(f"{year}-{month}-{day} is not a real date") from None
        values = {"year": f"{date.year:04d}", "month": f"{date.month:02d}", "day": f"{date.day:02d}"}
        # Doubled or trailing slashes in a layout are harmless: no empty folder name is made.
        parts = [part for part in self.layout.format_map(values).split("/") if part]
        return Target("/".join(parts), date)


def _check_layout(layout: str) -> None:
    if not layout.strip("/ "):
        raise NamingError("layout", "must not be empty")
    try:
        parsed = list(string.Formatter().parse(layout))
    except ValueError as exc:
        raise NamingError("layout", f"{layout!r} is not a valid template: {exc}") from None
    names = {name for _, name, spec, conv in parsed if name is not None}
    unknown = names - set(DATE_GROUPS)
    if unknown or any(spec or conv for _, name, spec, conv in parsed if name is not None):
        raise NamingError(
            "layout",
            f"{layout!r} may only use {{year}}, {{month}} and {{day}}"
            + (f", not {', '.join(sorted(unknown))}" if unknown else ""),
        )
    if layout.startswith("/") or any(part in ("..", ".") for part in layout.split("/")):
        raise NamingError("layout", f"{layout!r} must stay inside the destination")
    if "\0" in layout:
        raise NamingError("layout", "must not contain a NUL character")
    if any(len(os.fsencode(part)) > NAME_MAX - 16 for part in layout.split("/")):
        raise NamingError("layout", f"{layout!r} has a folder name longer than a file name may be")


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits in max_bytes, cut at a character boundary."""
    raw = os.fsencode(text)
    if len(raw) <= max_bytes:
        return text
    cut = raw[:max_bytes]
    # Step back off a partial UTF-8 sequence so the result is no worse than the input.
    while cut and (cut[-1] & 0xC0) == 0x80:
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:
        cut = cut[:-1]
    return os.fsdecode(cut)


def split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(os.fsencode(ext)) > 32:
        return name, ""
    return stem, "." + ext


def numbered(name: str, n: int) -> str:
    """``name (n).ext``, shortened in the stem so that it fits a file name's 255 bytes."""
    stem, ext = split_ext(name)
    suffix = f" ({n}){ext}"
    room = NAME_MAX - len(os.fsencode(suffix))
    return _cut(stem, room) + suffix
