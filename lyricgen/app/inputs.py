"""The page's inputs: the Write tab has a start word, a seed and one input a decoding option, whose default,
range and help are those of its field of `DecodingOptions` (the page adds only its own limits, so that one
visitor cannot exhaust the machine). The browser's values are read here — by the field's type — checked
against those limits and made into `DecodingOptions`; a mistake is a `LyricgenError` in one line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from lyricgen.decoding import DecodingOptions
from lyricgen.errors import LyricgenError

# What one request may ask for, so that one visitor cannot exhaust the machine.
MAX_START_WORD = 50  # characters
MAX_LINES = 64
MAX_SAMPLES = 16
MAX_LENGTH = 1000  # new words of free decoding
MAX_CRITIC_CHARS = 10_000
MAX_LINE_CHARS = 30  # characters per line (line_chars and max_line_chars): the cost of a form line grows with it
MAX_BEST_OF = 8  # candidates per line: form decoding decodes samples x best_of rows at once
MAX_KEYWORDS = 16
MAX_FIELD_CHARS = 500  # any other field (a number, the scheme, keywords, a run's name), refused before it is read


@dataclass(frozen=True)
class Input:
    """A decoding option on the Write tab: the field of `DecodingOptions` it sets, the page's word for it in a
    message, the page's limit (of a number; of a list's length; of a text's `unit`s) and where it goes."""

    name: str
    what: str = ""
    limit: int | None = None
    unit: str = "characters"
    group: str = "form"  # top (beside the start word), sampling or form

    @property
    def said(self) -> str:
        return self.what or self.name


# In the order of the `generate` endpoint's parameters (gradio_client and the HTTP API send them so), with the
# start word first and the seed after the sampling options; an option added later goes at the end.
WRITE = [
    Input("lines", limit=MAX_LINES, group="top"),
    Input("num_samples", "samples", MAX_SAMPLES, group="top"),
    Input("strategy", group="sampling"),
    Input("temperature", group="sampling"),
    Input("top_k", group="sampling"),
    Input("top_p", group="sampling"),
    Input("repetition_penalty", group="sampling"),
    Input("rhyme", "rhyme scheme", MAX_LINES, "letters"),
    Input("rhyme_rule"),
    Input("rhyme_with"),
    Input("line_chars", "characters per line", MAX_LINE_CHARS),
    Input("acrostic", limit=MAX_LINES),
    Input("keywords", limit=MAX_KEYWORDS),
    Input("no_copy"),
    Input("best_of", limit=MAX_BEST_OF),
    Input("max_line_chars", limit=MAX_LINE_CHARS),
    Input("cipai", "tune name", MAX_START_WORD),
    Input("length", limit=MAX_LENGTH, group="top"),
]
BY_NAME = {i.name: i for i in WRITE}
PARAMETERS = ["start_word", *[i.name for i in WRITE[:7]], "seed", *[i.name for i in WRITE[7:]]]
OWN_LIMITS = ("start_word", "acrostic", "cipai")  # shorter limits than MAX_FIELD_CHARS, said in their own words
HINTS = typing.get_type_hints(DecodingOptions)
FIELDS = {f.name: f for f in dataclasses.fields(DecodingOptions)}


def to_int(value, name: str) -> int:
    """A whole number from the browser (an int, a float such as 8.0, or text); exact for digits (a long seed
    keeps every digit) and within 64 bits, what torch's generator takes as a seed."""
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        try:
            real = float(value)
        except (TypeError, ValueError, OverflowError):
            raise LyricgenError(f"{name} must be a whole number, got {value!r}") from None
        if not real.is_integer():  # also nan and inf
            raise LyricgenError(f"{name} must be a whole number, got {value!r}")
        number = int(real)
    if not -(2**63) <= number < 2**63:
        raise LyricgenError(f"{name} must be a whole number between -2**63 and 2**63 - 1, got {value!r}")
    return number


def to_float(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise LyricgenError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise LyricgenError(f"{name} must be a finite number, got {value!r}")
    return number


def at_most(value: int, limit: int, what: str) -> int:
    if value > limit:
        raise LyricgenError(f"{what}: {value}, over this page's limit of {limit}")
    return value


def short_fields(fields: Mapping[str, object], limit: int = MAX_FIELD_CHARS) -> None:
    """Refuse a field longer than `limit` characters before anything parses it, so that no message repeats
    100,000 characters back to the browser."""
    for name, value in fields.items():
        at_most(len(str(value)) if value is not None else 0, limit, f"{name} length (characters)")


def _items(text) -> list[str]:
    return [p for p in re.split(r"[\s,，、]+", str(text or "").strip()) if p]


def parse_line_chars(text: str) -> list[int] | None:
    """`7` or `5,7,5,7` (commas or spaces) -> [7] or [5, 7, 5, 7]; empty -> None (free line lengths)."""
    parts = _items(text)
    if not parts:
        return None
    if not all(p.isdigit() for p in parts):
        raise LyricgenError(
            f"characters per line must be a number or numbers separated by commas, e.g. 7 or 5,7,5,7; got {text!r}"
        )
    return [int(p) for p in parts]


def parse_keywords(text: str) -> list[str]:
    """Words separated by commas or spaces (also ， and 、)."""
    return _items(text)


def read_value(name: str, value):
    """The value of option `name` from what the browser sent, by the type of its field."""
    if name == "line_chars":
        return parse_line_chars(value)
    if name == "keywords":
        return parse_keywords(value)
    kinds = typing.get_args(HINTS[name]) or (HINTS[name],)
    if type(None) in kinds and (value is None or str(value).strip() == ""):
        return None
    if int in kinds:
        return to_int(value, BY_NAME[name].said)
    if float in kinds:
        return to_float(value, name)
    text = str(value).strip() if type(None) in kinds else str(value)
    return text.upper() if name == "rhyme" else text  # a scheme's letters as the schema takes them


def shown(value) -> object:
    """A default as the page shows it: a list as `5,7`, null as an empty field."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return value


def check_limits(opts: DecodingOptions) -> DecodingOptions:
    """Refuse options over the page's limits (a number over its limit, a list or a text too long)."""
    for i in WRITE:
        value = getattr(opts, i.name)
        if i.limit is None or value is None:
            continue
        if i.name == "line_chars":
            at_most(len(opts.line_chars_list()), MAX_LINES, "characters per line (numbers in the list)")
            at_most(max(opts.line_chars_list(), default=0), i.limit, i.said)
        elif isinstance(value, (str, list)):
            size = len(opts.keyword_list()) if i.name == "keywords" else len(value)
            at_most(size, i.limit, i.said if i.name == "keywords" else f"{i.said} length ({i.unit})")
        else:
            at_most(value, i.limit, i.said)
    return opts


def read_options(values: Mapping[str, object], defaults: DecodingOptions) -> DecodingOptions:
    """The decoding options of a request: `values` (the browser's, by option name) over `defaults`, each read by
    its field's type, checked against the page's limits and the option's range. A tune (`cipai`) sets the
    clauses, their lengths and rhymes: rhyme, line_chars and lines do not apply then."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise TypeError(f"not an input of the page: {', '.join(unknown)}")
    short_fields({k: v for k, v in values.items() if k not in OWN_LIMITS})
    chosen = {name: read_value(name, value) for name, value in values.items()}
    if chosen.get("cipai"):
        chosen.update(rhyme=None, line_chars=None, lines=None)
    return check_limits(dataclasses.replace(defaults, **chosen)).check()
