"""Naming, layout templates and collision names, with property tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reorg_tui.engine.naming import NAME_MAX, InvalidDate, Naming, NamingError, numbered
from reorg_tui.engine.settings import DEFAULT_IGNORE, DEFAULT_LAYOUT, DEFAULT_PATTERN

NAMING = Naming(DEFAULT_PATTERN, DEFAULT_LAYOUT, DEFAULT_IGNORE)


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("2024-05-01_a.txt", True),
        ("2024-05-01_", True),
        ("2024-05-01a.txt", False),
        ("x2024-05-01_a.txt", False),
        (".2024-05-01_a.txt", False),
        ("2024-05-01_a.part", False),
        ("2024-05-01_a.tmp", False),
        ("2024-05-01_a.crdownload", False),
        ("2024-05-01_a.txt~", False),
        ("٢٠٢٤-05-01_arabic-digits", False),
    ],
)
def test_which_names_are_taken(name, wanted):
    assert NAMING.wants(name) is wanted


def test_target_folder_and_impossible_dates():
    assert NAMING.target("2024-02-29_leap.txt").folder == "2024/02/29"
    with pytest.raises(InvalidDate, match="2024-02-30 is not a real date"):
        NAMING.target("2024-02-30_x")
    with pytest.raises(InvalidDate):
        NAMING.target("2023-13-01_x")
    assert Naming(DEFAULT_PATTERN, "{year}/{month}", ()).target("2024-05-01_x").folder == "2024/05"


@pytest.mark.parametrize(
    ("pattern", "layout", "message"),
    [
        ("(", DEFAULT_LAYOUT, "not a valid regex"),
        (r"^(?P<year>\d{4})", DEFAULT_LAYOUT, "lacks the named group(s) month, day"),
        (DEFAULT_PATTERN, "{year}/{hour}", "may only use"),
        (DEFAULT_PATTERN, "../{year}", "must stay inside"),
        (DEFAULT_PATTERN, "/abs/{year}", "must stay inside"),
        (DEFAULT_PATTERN, "{year", "not a valid template"),
        (DEFAULT_PATTERN, "", "must not be empty"),
    ],
)
def test_bad_pattern_or_layout_is_refused(pattern, layout, message):
    with pytest.raises(NamingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Naming(pattern, layout, ())


@given(st.dates(), st.text(min_size=0, max_size=40).filter(lambda s: "/" not in s and "\0" not in s))
def test_every_real_date_lands_in_its_own_folder(date, rest):
    name = f"{date.isoformat()}_{rest}"
    if NAMING.is_ignored(name):
        return
    target = NAMING.target(name)
    assert target.date == date
    assert target.folder == f"{date.year:04d}/{date.month:02d}/{date.day:02d}"


names = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=300
).filter(lambda s: len(os.fsencode(s)) <= NAME_MAX)


@given(names, st.integers(min_value=1, max_value=10**6))
def test_collision_names_fit_and_differ(name, n):
    new = numbered(name, n)
    assert len(os.fsencode(new)) <= NAME_MAX
    assert new != name
    assert f" ({n})" in new
    assert "/" not in new
    assert new.encode("utf-8")  # cut at a character boundary: still valid text


def test_collision_name_keeps_the_extension():
    assert numbered("2024-01-01_a.tar", 2) == "2024-01-01_a (2).tar"
    assert numbered("2024-01-01_noext", 1) == "2024-01-01_noext (1)"
    long = "2024-01-01_" + "é" * 120 + ".txt"
    assert numbered(long, 12).endswith(" (12).txt")


segments = st.one_of(
    st.sampled_from(["{year}", "{month}", "{day}", "{year}-{month}", "{year}{month}{day}"]),
    st.text(alphabet="abcXYZ019 _-", min_size=1, max_size=12).filter(lambda s: s.strip(".") != ""),
)


@given(st.lists(segments, min_size=1, max_size=6), st.sampled_from(["/", "//"]), st.dates())
def test_any_valid_layout_renders_a_folder_inside_the_destination(parts, sep, date):
    layout = sep.join(parts)
    if not any("{" in p for p in parts):
        layout += "/{year}"
    naming = Naming(DEFAULT_PATTERN, layout, DEFAULT_IGNORE)
    target = naming.target(f"{date.isoformat()}_x.txt")
    components = target.folder.split("/")
    assert all(c not in ("", ".", "..") for c in components), target.folder
    assert not target.folder.startswith("/")
    expected = layout.format(year=f"{date.year:04d}", month=f"{date.month:02d}", day=f"{date.day:02d}")
    assert target.folder == "/".join(p for p in expected.split("/") if p)


@given(st.text(min_size=1, max_size=30))
def test_a_layout_is_either_refused_or_stays_inside_the_destination(layout):
    try:
        naming = Naming(DEFAULT_PATTERN, layout, DEFAULT_IGNORE)
    except NamingError:
        return
    folder = naming.target("2024-03-04_x").folder
    assert not folder.startswith("/") and ".." not in folder.split("/") and "\0" not in folder
