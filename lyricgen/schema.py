"""Typed options: each field of a settings dataclass says its type and its range, checked in one place.

A field made with `option(default, ge=..., lt=..., choices=...)` carries its range; `check(values, schema,
prefix)` refuses the first value of the wrong type or out of range with one line that names the option, the
value, what the option takes and an example (its default), e.g.

    length='abc' is not an integer; length takes an integer >= 0, or null; e.g. length=100

The library's settings (`RNNLM`'s `NetSettings`, `DecodingOptions`, the data module's and the optimiser's)
are such dataclasses, so a Python user gets the same refusal as the command line; the scripts check their
whole composed config at start-up with `lyricgen.config.check_config`. Only the keys present in `values`
are checked: a schema also serves for a config group that holds other keys (`_target_`).

The type check is a small `isinstance` walk rather than Hydra's structured configs: a structured config
would refuse `length=abc` while composing, with Hydra's own multi-line error and exit code 1, before any
code of the project runs.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from lyricgen.errors import LyricgenError

_RANGE = ("ge", "gt", "le", "lt")
_SYMBOL = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def option(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence | None = None,
    note: str = "",
    example: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    help: str = "",
) -> Any:
    """A dataclass field with its allowed range (numbers, or each number of a list) or choices; `note`
    is said after the range (e.g. "-1: no limit"); `example` is the value a refusal suggests (default:
    the default); `help` says what the option does (a config's comment, a page's label)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": tuple(choices) if choices else None, "note": note}
    meta["help"] = help
    if example is not dataclasses.MISSING:
        meta["example"] = example
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _members(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def conforms(value: Any, hint: Any) -> bool:
    """Whether `value` (as Hydra parses a command-line value) is of the type `hint`."""
    for member in _members(hint):
        origin = typing.get_origin(member)
        if member is Any:
            return True
        if member is type(None) and value is None:
            return True
        if member is bool and isinstance(value, bool):
            return True
        if member is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if member is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if member is str and isinstance(value, str):
            return True
        if (
            origin is None
            and isinstance(member, type)
            and member not in (int, float, bool)
            and isinstance(value, member)
        ):
            return True  # another class, e.g. a Path
        if origin is list and _is_list(value):
            (item,) = typing.get_args(member) or (Any,)
            if all(conforms(v, item) for v in value):
                return True
    return False


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def _type_name(hint: Any) -> str:
    names = []
    for member in _members(hint):
        if typing.get_origin(member) is list:
            (item,) = typing.get_args(member) or (Any,)
            names.append(f"a list of {_type_name(item).removeprefix('a ').removeprefix('an ')}s")
        else:
            names.append(_NAMES.get(member, getattr(member, "__name__", str(member))))
    return " or ".join(dict.fromkeys(names))


def allowed(f: dataclasses.Field, hint: Any) -> str:
    """What the field takes, in words: "an integer >= 1", "a number in [0, 1)", "one of rnn, gru, lstm"."""
    m = f.metadata
    if m.get("choices"):
        text = "one of " + ", ".join(dict.fromkeys(str(c) for c in m["choices"]))
    else:
        kinds = [h for h in _members(hint) if h is not type(None)]
        text = " or ".join(dict.fromkeys(_type_name(k) for k in kinds)) or "null"
        lo = next(((k, m[k]) for k in ("ge", "gt") if m.get(k) is not None), None)
        hi = next(((k, m[k]) for k in ("le", "lt") if m.get(k) is not None), None)
        if lo and hi:
            text += (
                f" in {'[' if lo[0] == 'ge' else '('}{_bound(lo[1])}, {_bound(hi[1])}{']' if hi[0] == 'le' else ')'}"
            )
        elif lo or hi:
            k, v = lo or hi
            text += f" {_SYMBOL[k]} {_bound(v)}"
    if type(None) in _members(hint):
        text += ", or null"
    if m.get("note"):
        text += f" ({m['note']})"
    return text


def yaml_value(value: Any) -> str:
    """A value as it is typed on the command line (null, true, [5,7])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if _is_list(value):
        return "[" + ",".join(yaml_value(v) for v in value) + "]"
    return str(value)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else yaml_value(value)


def _example(f: dataclasses.Field, key: str) -> str:
    if "example" in f.metadata:
        return f"; e.g. {key}={yaml_value(f.metadata['example'])}"
    if f.default is not dataclasses.MISSING:
        return f"; e.g. {key}={yaml_value(f.default)}"
    if f.default_factory is not dataclasses.MISSING:
        return f"; e.g. {key}={yaml_value(f.default_factory())}"
    return ""


def _in_range(value: Any, m: Mapping) -> bool:
    if m.get("choices") and value is not None and value not in m["choices"]:
        return False
    numbers = value if _is_list(value) else [value]
    for v in numbers:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if v != v:  # NaN is in no range
            return False
        for k, op in (("ge", v.__ge__), ("gt", v.__gt__), ("le", v.__le__), ("lt", v.__lt__)):
            if m.get(k) is not None and op(m[k]) is not True:
                return False
    return True


def check(values: Mapping, schema: type, prefix: str = "") -> None:
    """Raise LyricgenError for the first of `values` whose type or range the dataclass `schema` refuses."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name not in values:
            continue
        value, key = values[f.name], prefix + f.name
        if not conforms(value, hints[f.name]):
            raise LyricgenError(
                f"{key}={_shown(value)} is not {_type_name(hints[f.name])}; "
                f"{key} takes {allowed(f, hints[f.name])}{_example(f, key)}"
            )
        if not _in_range(value, f.metadata):
            problem = "is not one of the choices" if f.metadata.get("choices") else "is out of range"
            raise LyricgenError(
                f"{key}={_shown(value)} {problem}; {key} takes {allowed(f, hints[f.name])}{_example(f, key)}"
            )


def field_values(obj: Any) -> dict:
    """A dataclass instance's fields as a flat dict (nested values kept as they are)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _bound(value: float) -> str:
    """A range's end as written: whole numbers exactly (2**32 - 1 is 4294967295, not 4.29497e+09)."""
    return str(value) if isinstance(value, int) else f"{value:g}"
