"""The shard of a file: a stable hash of its path below the source (the same on every host, every
Python and every run), parsed from K/N with every mistake named, and applied where files are found
(the scan, the settings' naming)."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reorg_tui.engine.ledger import open_ledger
from reorg_tui.engine.naming import Naming, NotTaken
from reorg_tui.engine.records import RetryEntry
from reorg_tui.engine.settings import DEFAULT_IGNORE, DEFAULT_LAYOUT, DEFAULT_PATTERN
from reorg_tui.engine.shard import MAX_SHARDS, Shard, parse_shard, shard_of
from reorg_tui.engine.watch import ScanCount, scan
from tests.conftest import OLD, make_settings, run_once, running, wait_for, write

# Pinned: BLAKE2b with an 8-byte digest of the path's bytes (coreutils agrees: `printf %s PATH |
# b2sum -l 64`), big-endian, mod N. Were the hash changed, a file would go to another shard than
# the one that holds its retries and its history: this test must then fail.
PINNED = [
    ("a", "40f89e395b66422f", {2: 1, 4: 3, 7: 2, 1024: 559}),
    ("2024-03-01_a000.txt", "14b5104f4c1f5481", {2: 1, 4: 1, 7: 1, 1024: 129}),
    ("sub/2024-03-01_report.pdf", "50d10d815286f0a3", {2: 1, 4: 3, 7: 3, 1024: 163}),
    ("2024-12-31_été.txt", "192d7a1c7e4a4d6a", {2: 0, 4: 2, 7: 6, 1024: 362}),
    (os.fsdecode(b"2024-01-02_\xff\xfe.bin"), "fedca9886df4cf2c", {2: 0, 4: 0, 7: 3, 1024: 812}),
]


@pytest.mark.parametrize(("rel", "digest", "shards"), PINNED, ids=[p[1] for p in PINNED])
def test_the_hash_of_a_path_is_pinned(rel, digest, shards):
    assert int(digest, 16) % 1024 == shards[1024]  # the pins agree with themselves
    for n, k in shards.items():
        assert shard_of(rel, n) == k, (rel, n)
        assert Shard(k, n).owns(rel)
        assert not any(s.owns(rel) for s in Shard(k, n).siblings())


def test_the_hash_is_the_same_whatever_the_hash_seed_and_the_locale():
    """Python's own hash() of a str changes with PYTHONHASHSEED; a shard must not. And a name
    that is not UTF-8 is hashed by its bytes, under any locale."""
    program = (
        "import os\nfrom reorg_tui.engine.shard import shard_of\n"
        "print([shard_of(os.fsdecode(r), 1024) for r in (b'a', b'2024-01-02_\\xff\\xfe.bin')])"
    )
    for seed, lang in (("0", "C.UTF-8"), ("12345", "C"), ("random", "POSIX")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "LC_ALL": lang, "LANG": lang}
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env)
        assert out.stdout.strip() == "[559, 812]", (seed, lang, out.stderr)


def test_the_shards_of_n_share_a_source_between_them_fairly():
    names = [
        f"2024-{m:02d}-{d:02d}_scan{i:05d}.pdf" for m in range(1, 13) for d in range(1, 29) for i in range(12)
    ]
    counts = [0] * 4
    for rel in names:
        counts[shard_of(rel, 4)] += 1
    assert sum(counts) == len(names) == 4032
    assert all(900 < c < 1116 for c in counts), counts  # each within about 11% of a quarter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0/4", Shard(0, 4)),
        ("3/4", Shard(3, 4)),
        (" 1 / 2 ", Shard(1, 2)),
        ("0/1", Shard(0, 1)),
        ("1023/1024", Shard(1023, MAX_SHARDS)),
    ],
)
def test_k_of_n_is_parsed(text, expected):
    shard = parse_shard(text)
    assert shard == expected
    assert parse_shard(str(shard)) == shard
    assert shard.folder == f"shard-{shard.k}-of-{shard.n}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("4/4", "has K = 4, not below N = 4"),
        ("0/0", "has N = 0"),
        ("0/1025", "at most 1024 shards"),
        ("-1/4", "is not K/N"),
        ("1", "is not K/N"),
        ("a/b", "is not K/N"),
        ("1/4/2", "is not K/N"),
        ("１/４", "is not K/N"),  # full-width digits are digits to int(), not here
        ("", "is not K/N"),
    ],
)
def test_a_bad_k_of_n_says_what_is_wrong(text, why):
    with pytest.raises(ValueError) as caught:
        parse_shard(text)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)


def _naming(shard: Shard | None) -> Naming:
    return Naming(DEFAULT_PATTERN, DEFAULT_LAYOUT, DEFAULT_IGNORE, shard)


def test_a_file_of_another_shard_is_not_taken_and_says_why():
    rel = "sub/2024-03-01_report.pdf"  # shard 3 of 4 (pinned above)
    assert _naming(Shard(3, 4)).not_taken(rel, recursive=True) is None
    assert _naming(Shard(1, 4)).not_taken(rel, recursive=True) is NotTaken.OTHER_SHARD
    assert _naming(None).not_taken(rel, recursive=True) is None
    # The settings' other reasons come first: a name no shard would take says so.
    assert _naming(Shard(1, 4)).not_taken("sub/notes.txt", recursive=True) is NotTaken.NO_DATE


def test_the_scans_of_the_shards_of_n_partition_the_source(tmp_path: Path):
    """Each file found by exactly one shard's scan, by its path below the source (a file's folder
    counts: the same name in two folders may go to two shards); the others' only counted."""
    for folder in ("", "a", "a/b", "c"):
        for i in range(150):
            write(tmp_path / folder / f"2024-05-{1 + i % 28:02d}_f{i:03d}.txt", b"x")
    write(tmp_path / "notes.txt", b"not dated")
    whole = {rel for rel, _ in scan(str(tmp_path), _naming(None), True, ScanCount())}
    assert len(whole) == 600
    found: dict[str, int] = {}
    for k in range(3):
        count = ScanCount()
        for rel, _ in scan(str(tmp_path), _naming(Shard(k, 3)), True, count):
            assert rel not in found, rel
            assert shard_of(rel, 3) == k
            found[rel] = k
        assert count.taken + count.other_shards == 600
        assert count.ignored == 1  # notes.txt: what --shard leaves is not "ignored"
    assert set(found) == whole
    by_name = {}
    for rel, k in found.items():
        by_name.setdefault(rel.rsplit("/", 1)[-1], set()).add(k)
    assert any(len(ks) > 1 for ks in by_name.values())  # the path, not the name alone, decides


def _of(k: int, n: int, count: int, stem: str = "2024-06-01_f") -> list[str]:
    """``count`` names of shard k of n (and only those)."""
    names = (f"{stem}{i:04d}.txt" for i in range(100_000))
    return list(itertools.islice((name for name in names if shard_of(name, n) == k), count))


def test_what_a_shard_counts_and_shows_waiting_is_its_own(tmp_path):
    """The settling count, the Waiting view's rows and the ready queue hold only the shard's files:
    another's, settling beside them, are not looked at."""
    settings = make_settings(tmp_path, shard=Shard(1, 4), settle=600.0)
    mine, theirs = _of(1, 4, 12), _of(2, 4, 30)
    for name in mine + theirs:
        write(settings.source / name, b"fresh")  # written now: settling for 10 minutes
    with running(settings) as (engine, _):
        wait_for(lambda: engine.snapshot().scans >= 1, what="a full scan")
        snap = engine.snapshot()
    assert snap.queues.settling == len(mine) and snap.queues.ready == 0
    assert {p.path for p in snap.waiting} == set(mine)
    assert sorted(p.name for p in settings.source.iterdir()) == sorted(mine + theirs)  # none moved


def test_a_saved_retry_of_another_shard_s_file_is_dropped_and_left_in_the_source(tmp_path, caplog):
    settings = make_settings(tmp_path, shard=Shard(0, 2))
    [mine], [theirs] = _of(0, 2, 1), _of(1, 2, 1)
    for name in (mine, theirs):
        write(settings.source / name, name.encode(), OLD)
    ledger = open_ledger(settings.state_dir)
    due = time.time() - 1
    ledger.save_retries([RetryEntry(name, 1, due, "EIO", ["EIO"], due) for name in (mine, theirs)], [])
    ledger.close()
    with caplog.at_level(logging.INFO, logger="reorg_tui.engine.failures"):
        run_once(settings)
    assert [p.name for p in settings.source.iterdir()] == [theirs]
    assert (settings.dest / "2024/06/01" / mine).read_bytes() == mine.encode()
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped == [
        f"dropped {settings.source / theirs} from the retry queue: its path hashes to another shard "
        "than --shard, so it stays in the source untouched"
    ]
