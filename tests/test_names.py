"""How names are made safe for a terminal and a log line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reorg_tui.names import _UNSAFE, _escape, safe


@given(st.text())
def test_safe_escapes_exactly_what_the_rule_names_and_nothing_else(text):
    assert safe(text) == _UNSAFE.sub(_escape, text)  # the fast path changes nothing
    out = safe(text)
    assert "\n" not in out and "\x1b" not in out and "\u202e" not in out
    assert len(out.splitlines()) <= 1, "a name made safe is one line, however it is split"


def test_safe_examples():
    assert safe("2024-01-01_plain.txt") == "2024-01-01_plain.txt"
    assert safe("a\nb\x1b[31m\u202ec\\d") == "a\\x0ab\\x1b[31m\\u202ec\\\\d"
    assert safe("a\u2028b\u2029c") == "a\\u2028b\\u2029c"
