"""State read back is input: the one way every state file's fields are checked when read.

A quarantine record (its ``<id>.json`` and its ledger row), the published snapshot, and the
other small files in the state folder are written by this program, and then may be edited by
hand, truncated, or planted. Each reader states, field by field, the types it accepts
(``Spec``), and ``problems`` says what in the data differs: the reader then sets the whole
thing aside with a warning instead of acting on part of it, or crashing on it later.

``bool`` is never an ``int`` here (JSON's ``true`` is not a count), and a float field takes an
int (JSON writes ``0.0`` as ``0`` from some writers).

Threads: any (pure functions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NUMBER = (int, float)
TEXT = (str,)
OPTIONAL_TEXT = (str, type(None))
OPTIONAL_NUMBER = (int, float, type(None))


@dataclass(frozen=True)
class Spec:
    """The fields a kind of state holds: each with the types it takes; ``required`` must be
    there; ``extra`` whether fields it does not name are ignored (a newer version's) or wrong."""

    types: Mapping[str, tuple[type, ...]]
    required: frozenset[str] = frozenset()
    extra: bool = False


def problems(data: object, spec: Spec) -> list[str]:
    """What in ``data`` is not what ``spec`` says, as short phrases (``size='12'``); [] if none."""
    if not isinstance(data, dict):
        return [f"not an object but {type(data).__name__}"]
    found = [f"{name} missing" for name in sorted(spec.required - data.keys())]
    for key, value in data.items():
        accepted = spec.types.get(key) if isinstance(key, str) else None
        if accepted is None:
            if not spec.extra:
                found.append(f"unknown field {key!r}")
            continue
        if type(value) not in accepted:
            found.append(f"{key}={_short(value)}")
    return found


def picked(data: Mapping[str, object], spec: Spec) -> dict[str, object]:
    """The fields of ``data`` that ``spec`` names (after ``problems`` found none wrong)."""
    return {k: v for k, v in data.items() if k in spec.types}


def all_of(values: object, types: tuple[type, ...]) -> bool:
    """Whether ``values`` is a list whose items are all of ``types``."""
    return isinstance(values, list) and all(type(v) in types for v in values)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
