"""Decoding options: how to pick each next word, and the form the lyrics must take."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from lyricgen.decoding.rhyme import RHYME_RULES
from lyricgen.errors import LyricgenError

STRATEGIES = ("sample", "greedy")


@dataclass
class DecodingOptions:
    """The fields of `conf/decoding/default.yaml` (the one list used by generate, evaluate and the callbacks).

    Sampling: `strategy`, `temperature`, `top_k`, `top_p`, `repetition_penalty`, `num_samples`; `length`
    caps the new words and `lines` stops after N lines.

    Form (any of them turns on line-by-line form decoding, see `lyricgen.decoding.form`): `rhyme` (a
    scheme such as AABB, one letter a line, X free), `rhyme_rule`, `rhyme_with`, `line_chars` (an int or
    a list cycled over the lines), `acrostic`, `keywords`, `no_copy` (n >= 2; 0 is off). `best_of`
    candidate lines are decoded for each line and the likeliest is kept; `max_line_chars` caps a line
    whose length is free. In form decoding `lines` sets the length (default: the acrostic's, the
    scheme's or the line_chars list's length, else 4) and `length` does not apply.
    """

    strategy: str = "sample"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    length: int | None = 100
    lines: int | None = None
    num_samples: int = 1
    max_length: int = 2000  # a cap for `lines` alone, so that a model that never ends a line stops
    rhyme: str | None = None
    rhyme_rule: str = "shisan"
    rhyme_with: str | None = None
    line_chars: int | list[int] | None = None
    acrostic: str | None = None
    keywords: list[str] = field(default_factory=list)
    no_copy: int = 0
    best_of: int = 6
    max_line_chars: int = 20

    @classmethod
    def from_mapping(cls, values: Mapping) -> DecodingOptions:
        """The options found among `values` (e.g. a script's config); other keys are ignored."""
        return cls(**{f.name: _plain(values[f.name]) for f in fields(cls) if f.name in values})

    @property
    def form(self) -> bool:
        """Whether any form constraint is asked for (then decoding goes line by line)."""
        return bool(self.rhyme or self.rhyme_with or self.line_chars or self.acrostic or self.keywords or self.no_copy)

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

    def check(self) -> DecodingOptions:
        """Raise LyricgenError, with the fix, for the first value out of range."""
        chars = self.line_chars_list()
        checks = [
            (self.strategy in STRATEGIES, f"strategy must be 'sample' or 'greedy', got {self.strategy!r}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.top_k >= 0, f"top_k must be >= 0 (0 turns it off), got {self.top_k}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (
                self.repetition_penalty >= 1,
                f"repetition_penalty must be >= 1 (1 turns it off), got {self.repetition_penalty}",
            ),
            (self.length is None or self.length >= 0, f"length must be >= 0, got {self.length}"),
            (self.lines is None or self.lines >= 1, f"lines must be >= 1, got {self.lines}"),
            (self.length is not None or self.lines is not None or self.form, "give length or lines (or both)"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
            (
                not self.rhyme or re.fullmatch(r"[A-Z]+", self.rhyme) is not None,
                "rhyme must be a scheme of letters A-Z, one per line (e.g. AABB, ABAB, XAXA; X is free), "
                f"got {self.rhyme!r}",
            ),
            (
                self.rhyme_rule in RHYME_RULES,
                f"rhyme_rule must be one of {', '.join(RHYME_RULES)}, got {self.rhyme_rule!r}",
            ),
            (
                not self.rhyme_with or "A" in (self.rhyme or ""),
                "rhyme_with sets the class of the A lines; give a scheme with A in it, e.g. rhyme=AABB "
                f"(got rhyme={self.rhyme!r})",
            ),
            (
                all(isinstance(c, int) and c >= 1 for c in chars),
                "line_chars must be an integer >= 1 or a list of them, e.g. line_chars=7 or line_chars=[5,7,5,7], "
                f"got {self.line_chars!r}",
            ),
            (all(c <= 200 for c in chars), f"line_chars must be at most 200, got {self.line_chars!r}"),
            (
                self.acrostic is None or self.acrostic == "" or not any(ch.isspace() for ch in self.acrostic),
                f"acrostic must be characters without spaces (one per line), got {self.acrostic!r}",
            ),
            (
                self.no_copy == 0 or self.no_copy >= 2,
                f"no_copy must be 0 (off) or a run length n >= 2, got {self.no_copy}",
            ),
            (self.best_of >= 1, f"best_of must be >= 1, got {self.best_of}"),
            (self.max_line_chars >= 1, f"max_line_chars must be >= 1, got {self.max_line_chars}"),
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
