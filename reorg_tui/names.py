"""How a user's file name (or any text from outside) is shown: in a log line, on a terminal, in the
dashboard. Control characters, bidirectional overrides and undecodable bytes are escaped, so no
name can forge or garble what an operator reads.
"""

from __future__ import annotations

import re

# Control characters (C0, C1), the line and paragraph separators (str.splitlines() breaks on
# them, as some log readers do), bidirectional marks and overrides, undecodable bytes, backslash.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\udc80-\udcff\\\\]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """Printable, one-line form of a name: never interpreted by a terminal or a log reader."""
    if text.isprintable() and "\\" not in text:  # the usual name: nothing to escape (fast, in C)
        return text
    return _UNSAFE.sub(_escape, text)
