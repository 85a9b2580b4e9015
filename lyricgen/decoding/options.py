"""Decoding options: how to pick each next word, and the form the lyrics must take."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields

from lyricgen.errors import LyricgenError
from lyricgen.prosody import RHYME_RULES
from lyricgen.schema import check, field_values, option

STRATEGIES = ("sample", "greedy")
# The sampling defaults, everywhere (generate.py, the page, the callbacks, evaluate.py, the benchmark): of the
# settings tried, the samples closest to the held-out lyrics on the measures evaluate.py prints
# (docs/generation.md, "The defaults").
TEMPERATURE = 0.8
TOP_P = 1.0
FORM_SECTION = "rhyme"  # the first form option: conf/decoding/default.yaml's section on form starts there


@dataclass
class DecodingOptions:
    """Every decoding option with its default, range and help: the one source of conf/decoding/default.yaml
    (written from it by `config_yaml`), the page's inputs, the callbacks' and the benchmark's settings.

    Sampling: `strategy`, `temperature`, `top_k`, `top_p`, `repetition_penalty`, `num_samples`; `length`
    caps the new words and `lines` stops after N lines.

    Form (any of them turns on line-by-line form decoding, see `lyricgen.decoding.form`): `rhyme` (a
    scheme such as AABB, one letter a line, X free), `rhyme_rule`, `rhyme_with`, `line_chars` (an int or
    a list cycled over the lines), `acrostic`, `keywords`, `no_copy` (n >= 2; 0 is off), `cipai` (a whole ci in
    the shape of a tune of the model's corpus: its clauses, their lengths, punctuation and rhymes; the
    acrostic then goes one character a clause). `best_of`
    candidate lines are decoded for each line and the likeliest is kept; `max_line_chars` caps a line
    whose length is free. In form decoding `lines` sets the length (default: the acrostic's, the
    scheme's or the line_chars list's length, else 4) and `length` does not apply.
    """

    strategy: str = option("sample", choices=STRATEGIES, help="sample | greedy (always the likeliest word)")
    temperature: float = option(TEMPERATURE, gt=0, help="lower is safer, higher is wilder")
    top_k: int = option(0, ge=0, note="0: all words", help="keep the k likeliest words (0: all)")
    top_p: float = option(
        TOP_P, gt=0, le=1, help="nucleus sampling: the likeliest words up to this probability mass (1: all)"
    )
    repetition_penalty: float = option(
        1.0, ge=1, note="1: off", help="> 1 discourages words the sample already used (not line breaks)"
    )
    length: int | None = option(
        100,
        ge=0,
        note="new words; null: no limit but lines",
        example=100,
        help="new words at most (null: no limit but lines); not used by form decoding",
    )
    lines: int | None = option(None, ge=1, example=8, help="stop after this many complete lines")
    num_samples: int = option(1, ge=1, help="samples, decoded together as one batch")
    max_length: int = option(
        2000, ge=1, help="new words at most when only lines is given (a model that never ends a line stops)"
    )
    rhyme: str | None = option(
        None,
        note="a scheme of letters A-Z, one a line",
        example="AABB",
        help="a scheme, one letter a line, repeated: AABB, ABAB, AAAA, XAXA (X: free)",
    )
    rhyme_rule: str = option(
        "shisan",
        choices=RHYME_RULES,
        help="shisan (十三辙) | strict (same pinyin final) | loose (十三辙, en/eng and in/ing merged)",
    )
    rhyme_with: str | None = option(None, example="光", help="a word whose rhyme class the A lines take (光 -> 江阳)")
    line_chars: int | list[int] | None = option(
        None,
        ge=1,
        le=200,
        example=7,
        help="characters per line (no spaces or punctuation): 7, or a list cycled: [5,7,5,7]",
    )
    acrostic: str | None = option(
        None, example="天青色等烟雨", help="藏头: line i begins with its i-th character; lines default to its length"
    )
    keywords: list[str | int | float] | str = option(
        default_factory=list, help="words that must appear, e.g. [星星,月亮]"
    )
    no_copy: int = option(
        0,
        ge=0,
        note="0: off, else a run length n >= 2",
        example=4,
        help="n >= 2: never write a run of n words found in the training text (0: off)",
    )
    best_of: int = option(6, ge=1, help="form decoding: candidate lines sampled per line, the best kept")
    max_line_chars: int = option(20, ge=1, le=200, help="form decoding: the longest line when line_chars is not given")
    cipai: str | None = option(
        None,
        note="a tune (词牌) of the model's corpus of ci; list: the known tunes",
        example="浣溪沙",
        help="a whole ci in the shape of a tune (词牌) of a model trained on ci (data=songci): cipai=浣溪沙; "
        "cipai=list prints the tunes",
    )

    @classmethod
    def from_mapping(cls, values: Mapping) -> DecodingOptions:
        """The options found among `values` (e.g. a script's config); other keys are ignored."""
        return cls(**{f.name: _plain(values[f.name]) for f in fields(cls) if f.name in values})

    @property
    def form(self) -> bool:
        """Whether any form constraint is asked for (then decoding goes line by line)."""
        return bool(
            self.rhyme
            or self.rhyme_with
            or self.line_chars
            or self.acrostic
            or self.keywords
            or self.no_copy
            or self.cipai
        )

    def form_lines(self) -> int:
        """How many lines form decoding writes."""
        if self.lines is not None:
            return self.lines
        for n in (len(self.acrostic or ""), len(self.rhyme or ""), len(self.line_chars_list())):
            if n:
                return n
        return 4

    def line_chars_list(self) -> list[int]:
        if self.line_chars is None or self.line_chars == []:
            return []
        return [self.line_chars] if isinstance(self.line_chars, int) else list(self.line_chars)

    def keyword_list(self) -> list[str]:
        if not self.keywords:
            return []
        words = [self.keywords] if isinstance(self.keywords, str) else list(self.keywords)
        return [str(w) for w in words if str(w)]

    def check(self, prefix: str = "") -> DecodingOptions:
        """Raise LyricgenError, with the fix, for the first value of the wrong type or out of range (named
        `prefix` + option, e.g. `callbacks.sample_lyrics.decoding.top_p`) and for options that contradict."""
        check(field_values(self), DecodingOptions, prefix)  # each option's type and range (lyricgen.schema)
        rhyme = self.rhyme or ""
        checks = [
            (self.length is not None or self.lines is not None or self.form, "give length or lines (or both)"),
            (
                not rhyme or re.fullmatch(r"[A-Z]+", rhyme) is not None,
                f"{prefix}rhyme={rhyme!r} is not a scheme; rhyme takes letters A-Z, one per line "
                "(X is free), e.g. rhyme=AABB",
            ),
            (
                not self.rhyme_with or "A" in rhyme,
                f"{prefix}rhyme_with sets the class of the A lines; give a scheme with A in it, e.g. rhyme=AABB "
                f"(got rhyme={self.rhyme!r})",
            ),
            (
                not self.acrostic or not any(ch.isspace() for ch in self.acrostic),
                f"{prefix}acrostic={self.acrostic!r} has spaces; acrostic takes characters without spaces "
                "(one per line), e.g. acrostic=天青色等烟雨",
            ),
            (
                not self.cipai or not (self.rhyme or self.line_chars or self.lines is not None),
                f"{prefix}cipai={self.cipai} sets the clauses, their lengths and rhymes: leave out rhyme, line_chars "
                f"and lines (got rhyme={self.rhyme}, line_chars={self.line_chars}, lines={self.lines})",
            ),
            (
                self.no_copy != 1,
                f"{prefix}no_copy=1 is out of range; no_copy takes 0 (off) or a run length n >= 2; e.g. no_copy=4",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise LyricgenError(message)
        return self


def _plain(value):
    """OmegaConf lists (ListConfig) to Python lists; other values as they are."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def config_yaml() -> str:
    """conf/decoding/default.yaml as the fields of `DecodingOptions` make it: each option, its default and its
    help; tests/test_configs.py holds the file to it and says how to write it again."""
    from lyricgen.schema import yaml_value

    lines = [
        "# Decoding options: the one list, used by generate.yaml, evaluate.yaml, app.yaml and the callbacks.",
        "# Written from the fields of lyricgen.decoding.DecodingOptions (config_yaml): change them there.",
    ]
    for f in fields(DecodingOptions):
        if f.name == FORM_SECTION:
            lines.append(
                "# Form: any of these switches to line-by-line form decoding, which meets them exactly or refuses."
            )
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        lines.append(f"{f.name + ': ' + yaml_value(default):<24} # {f.metadata['help']}")
    return "\n".join(lines) + "\n"
