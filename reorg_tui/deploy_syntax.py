"""Values written into a supervisord section or a systemd unit, in each format's own syntax.

A folder's name is chosen by whoever made the folder, and the printed file runs as root: a value
must never end its line, open a comment, or mean anything to the format. Each value is escaped
for the rules of the parser that reads it, or refused with one line (``Uncarriable``, exit 2)
where that format cannot carry it:

- supervisord reads its file with configparser (``inline_comment_prefixes`` ``;`` and ``#``
  after whitespace; a line break starts a new line, and a line ``[program:x]`` a new section)
  as UTF-8, expands ``%(name)s`` in a value (``%%`` is a ``%``), then splits ``command`` with
  ``shlex.split``. A line break, a carriage return or an undecodable byte cannot be carried;
  in a value that is not split (the log file), neither can whitespace before ``;`` or ``#``,
  and there ``%`` is expanded twice.
- systemd (``systemd.syntax(7)``, ``systemd.service(7)``): in ``ExecStart=`` a double-quoted word
  takes C escapes (``\\n``, ``\\xff``), ``\\"`` and ``\\\\``; ``%%`` is a ``%`` (specifiers such
  as ``%h`` are expanded otherwise) and ``$$`` a ``$`` (``$NAME`` is substituted). So every
  argument can be carried. ``ReadWritePaths=`` unquotes without C escapes and wants UTF-8: a
  line break, a carriage return or an undecodable byte in a folder's name cannot be carried.
- Free text (comments, ``Description=``) is the escaped display form of names.safe, which has
  no line break, no undecodable byte and no trailing lone backslash.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence

from reorg_tui.config import ConfigError
from reorg_tui.names import safe

_LINE_BREAKS = ("\n", "\r")


class Uncarriable(ConfigError):
    """A value the deployment file's format cannot carry: one line, exit code 2."""

    def __init__(self, fmt: str, what: str, value: str, why: str) -> None:
        super().__init__(
            f"{what} {value} {why}: {fmt} cannot carry it (rename it, or write the file by hand)"
        )


def _undecodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a byte surrogateescape kept
        return True
    return False


def _refuse_unreadable(fmt: str, what: str, value: str) -> None:
    if any(brk in value for brk in _LINE_BREAKS):
        raise Uncarriable(fmt, what, value, "holds a line break")
    if _undecodable(value):
        raise Uncarriable(fmt, what, value, "holds bytes that are not UTF-8")


# ---- supervisord ---------------------------------------------------------------------------

SUPERVISORD = "supervisord's config file"


def supervisord_command(argv: Sequence[tuple[str, str]]) -> str:
    """``command=``'s value: each (what, argument) as one shlex word, ``%`` doubled, and ``;``
    and ``#`` outside quotes (``\\;``) so that configparser never sees a comment start."""
    words = []
    for what, arg in argv:
        _refuse_unreadable(SUPERVISORD, what, arg)
        word = shlex.quote(arg)
        if word.startswith("'"):  # shlex's safe words hold neither ; nor #
            word = word.replace(";", "'\\;'").replace("#", "'\\#'")
        words.append(word.replace("%", "%%"))
    return " ".join(words)


def supervisord_logfile(what: str, value: str) -> str:
    """``stdout_logfile=``'s value, which supervisord does not split: refused where it would end
    its line or open a comment, or where it is not UTF-8. supervisord expands ``%`` in it twice
    (``saneget``, then ``expand`` again: options.py), so each ``%`` is written as four."""
    _refuse_unreadable(SUPERVISORD, what, value)
    for i, char in enumerate(value):
        if char in ";#" and i and value[i - 1].isspace():
            raise Uncarriable(SUPERVISORD, what, value, f"holds whitespace before {char!r}")
    if value != value.strip():
        raise Uncarriable(SUPERVISORD, what, value, "begins or ends with whitespace")
    return value.replace("%", "%%%%")


# ---- systemd -------------------------------------------------------------------------------

# A word of these alone means itself to systemd, unquoted (no escape, specifier, variable or
# quote); the first word must also not start with one of ExecStart='s prefixes (-@:+!).
_PLAIN = re.compile(r"[A-Za-z0-9_.,:+=@/-]+")
_PREFIXES = "-@:+!"


SYSTEMD = "a systemd unit"
_EXEC_ESCAPES = {"\\": "\\\\", '"': '\\"', "%": "%%", "$": "$$"}


def _exec_word(arg: str) -> str:
    out = []
    for char in arg:
        if char in _EXEC_ESCAPES:
            out.append(_EXEC_ESCAPES[char])
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif not char.isprintable():
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def systemd_exec(argv: Iterable[str]) -> str:
    """``ExecStart=``'s value: each argument exactly, a double-quoted word unless it is plain."""
    words = []
    for i, arg in enumerate(argv):
        plain = _PLAIN.fullmatch(arg) and not (i == 0 and arg[0] in _PREFIXES)
        words.append(arg if plain else _exec_word(arg))
    return " ".join(words)


def systemd_paths(paths: Iterable[tuple[str, str, bool]]) -> str:
    """``ReadWritePaths=``'s value from (what, path, optional): each path as it is if plain, else
    double-quoted (``\\`` and ``"`` escaped, ``%`` doubled); ``-`` before an optional one (no
    error if it is missing)."""
    words = []
    for what, path, optional in paths:
        _refuse_unreadable(SYSTEMD + "'s ReadWritePaths=", what, path)
        if not _PLAIN.fullmatch(path):
            path = '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'
        words.append(("-" if optional else "") + path)
    return " ".join(words)


def systemd_text(text: str) -> str:
    """Free text for ``Description=``: the display form, specifiers kept literal."""
    return safe(text).replace("%", "%%")
