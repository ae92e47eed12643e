"""State read back is input: the one way every state file's fields are checked when read.

A quarantine record (its ``<id>.json`` and its ledger row), the published snapshot, and the
other small files in the state folder are written by this program, and then may be edited by
hand, truncated, or planted. Each reader states, field by field, the types it accepts
(``Spec``), and ``problems`` says what in the data differs: the reader then sets the whole
thing aside with a warning instead of acting on part of it, or crashing on it later. A frozen
dataclass read back whole from JSON (the published snapshot) is checked against its own
annotations by ``build``, nested dataclasses, tuples and dicts included, to the same rules.

``bool`` is never an ``int`` here (JSON's ``true`` is not a count), and a float field takes an
int (JSON writes ``0.0`` as ``0`` from some writers).

Threads: any (pure functions).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVar

T = TypeVar("T")

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


MAX_COUNT = 2**63 - 1  # SQLite's INTEGER; a count or a size beyond it is not one we wrote
MAX_TIME = 1e11  # unix seconds, the year 5138: C's time_t and every date shown hold it


def a_count(value: object) -> TypeGuard[int]:
    """A count or a size as this version writes one: an int (never a bool), 0 up to MAX_COUNT."""
    return type(value) is int and 0 <= value <= MAX_COUNT


def a_time(value: object) -> TypeGuard[float]:
    """A unix time as this version writes one: a finite number within +-MAX_TIME (1e308 or
    Infinity would hold a file forever, or end a command on time_t)."""
    return (type(value) is int or type(value) is float) and -MAX_TIME <= value <= MAX_TIME  # NaN fails


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


class BadState(ValueError):
    """State read back that is not what this version writes; ``str()`` says what, in one line."""


def parse_json(raw: bytes | str, **options: Any) -> Any:
    """JSON read back from a state file: BadState (a ValueError) for anything that is not JSON,
    a document nested too deep for the parser (``[[[[...``: a RecursionError) included."""
    try:
        return json.loads(raw, **options)
    except RecursionError:
        raise BadState("JSON nested too deep") from None
    except ValueError as exc:  # (UnicodeDecodeError is one)
        raise BadState(f"not JSON: {str(exc).splitlines()[0][:80]}") from None


def build(cls: type[T], data: object, where: str = "") -> T:
    """``cls`` (a dataclass) from JSON ``data``, every field checked against its annotation:
    ``int`` (not bool), ``float`` (an int too; finite), ``str``, ``bool``, ``X | None``,
    ``tuple[X, ...]`` and fixed tuples (from lists), ``dict[K, V]`` (int keys from JSON's
    strings), nested dataclasses. Fields it does not know are ignored (a newer version's); a
    missing one takes its default. Raises BadState naming the first field that is wrong."""
    return typing.cast(T, _value(cls, data, where or cls.__name__))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _value(kind: Any, value: object, where: str) -> object:
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass(kind, value, where)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _value(option, value, where)
            except BadState:
                continue
        raise BadState(f"{where}={_short(value)} is not a {kind}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise BadState(f"{where}={_short(value)} is not a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise BadState(f"{where} has {len(value)} items, not {len(args)}")
        return tuple(_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise BadState(f"{where}={_short(value)} is not an object")
        key_kind, value_kind = args
        out = {}
        for key, item in value.items():
            if key_kind is int:
                try:
                    key = int(key)
                except ValueError:
                    raise BadState(f"{where} has a key {_short(key)} that is not a number") from None
            out[key] = _value(value_kind, item, f"{where}[{key!r}]")
        return out
    if kind is float:
        if type(value) not in (int, float) or not math.isfinite(value):  # type: ignore[arg-type]
            raise BadState(f"{where}={_short(value)} is not a number")
        return float(value)  # type: ignore[arg-type]
    if kind in (int, str, bool):
        if type(value) is not kind:
            raise BadState(f"{where}={_short(value)} is not a {kind.__name__}")
        return value
    raise TypeError(f"fields.build cannot read a {kind} ({where})")  # a field this module lacks


def _dataclass(cls: type, value: object, where: str) -> object:
    if not isinstance(value, dict):
        raise BadState(f"{where}={_short(value)} is not an object")
    hints = _hints(cls)
    given: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            given[f.name] = _value(hints[f.name], value[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BadState(f"{where}.{f.name} is missing")
    return cls(**given)
