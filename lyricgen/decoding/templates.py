"""Tune templates (词牌): the fixed shape of a ci, mined from the training split, and how a text meets it.

A ci is written to a tune whose shape is fixed: how many clauses, how many characters each, the
punctuation after each, and which clause ends rhyme. The corpus (`data.format=songci`) gives each ci a
title line with its tune, `《浣溪沙》`, then its lines. For every tune, `mine_templates` takes

- the shape: the most common sequence of (characters, punctuation) clauses among the tune's training ci,
  with the line breaks most of those ci have;
- the rhyme letters: two clause ends rhyme when their last characters are in one rhyme class in at least
  half of the ci of that shape (`RHYME_AGREEMENT`); clause ends linked that way share a letter (A, B, ...
  in order of first appearance), and the others are free (X). Rhyme classes are those of form decoding
  (`lyricgen.prosody`, modern pinyin): a Song-dynasty rhyme that modern Mandarin has lost, such as
  the entering tone's, shows up as a free clause.

A template is what form decoding needs: clause lengths, rhyme letters and the punctuation (and line
breaks) written after each clause. Templates travel in the checkpoint as plain dicts (`to_dict`).
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lyricgen.data.source import TITLE
from lyricgen.prosody import rhyme_class

RULE = "shisan"  # the rhyme rule templates are mined with (their rhyme letters); decoding may use another
RHYME_AGREEMENT = 0.5  # two clause ends rhyme in a tune when they rhyme in at least this share of its ci
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWYZ"  # X is the free letter of a rhyme scheme

Clause = tuple[int, str]  # (characters, the punctuation after them)


def is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def tune_of(line: str) -> str | None:
    """The tune of a title line `《浣溪沙》`, or None if the line is no title."""
    m = TITLE.match(line.strip())
    return m.group(1) if m else None


def clauses_of(line: str) -> list[tuple[str, str]]:
    """A line cut into clauses: (its characters, the punctuation after them). Spaces are dropped; a
    character that is neither punctuation nor a space counts (□, a lost character, fills its slot)."""
    out, text, punct = [], "", ""
    for ch in line:
        if ch.isspace():
            continue
        if is_punct(ch):
            punct += ch
            continue
        if punct:  # a new clause begins
            out.append((text, punct))
            text, punct = "", ""
        text += ch
    if text or punct:
        out.append((text, punct))
    return out


def shape_of(lines: Sequence[str]) -> tuple[tuple[Clause, ...], tuple[int, ...]]:
    """The clauses (length, punctuation) of a ci's lines (title excluded) and the clause indices after
    which a line ends."""
    clauses: list[Clause] = []
    breaks = []
    for line in lines:
        parts = clauses_of(line)
        clauses += [(len(text), punct) for text, punct in parts]
        if parts:
            breaks.append(len(clauses) - 1)
    return tuple(clauses), tuple(breaks)


def clause_ends(lines: Sequence[str]) -> list[str]:
    """The last character of each clause (what rhymes)."""
    return [text[-1] if text else "" for line in lines for text, _ in clauses_of(line)]


@dataclass
class Template:
    """The shape of a tune: clause lengths, the punctuation after each, line breaks, rhyme letters."""

    tune: str
    clauses: list[Clause]
    line_ends: list[int]  # clause indices after which a line ends
    rhyme: str  # one letter a clause: A, B, ... rhyme together, X is free
    count: int  # ci of the tune in the training split
    shape_count: int  # of which have this shape

    @property
    def share(self) -> float:
        return self.shape_count / max(1, self.count)

    def lines(self) -> list[list[int]]:
        """The clause indices of each line."""
        out, start = [], 0
        for end in self.line_ends:
            out.append(list(range(start, end + 1)))
            start = end + 1
        return out

    def shape_text(self) -> str:
        """`7A。7A。7A。/ 7，7A。/ 7A。`: each clause's length, its rhyme letter (none when free) and its
        punctuation, lines separated by ` / `."""
        return " / ".join(
            "".join(
                f"{self.clauses[i][0]}{'' if self.rhyme[i] == 'X' else self.rhyme[i]}{self.clauses[i][1]}" for i in line
            )
            for line in self.lines()
        )

    def matches(self, lines: Sequence[str]) -> bool:
        """Whether a ci's clause lengths and punctuation are the template's (line breaks aside)."""
        return list(shape_of(lines)[0]) == list(self.clauses)

    def to_dict(self) -> dict:
        return {
            "clauses": [[n, p] for n, p in self.clauses],
            "line_ends": list(self.line_ends),
            "rhyme": self.rhyme,
            "count": self.count,
            "shape_count": self.shape_count,
        }

    @classmethod
    def from_dict(cls, tune: str, d: dict) -> Template:
        return cls(
            tune,
            [(int(n), str(p)) for n, p in d["clauses"]],
            [int(i) for i in d["line_ends"]],
            str(d["rhyme"]),
            int(d["count"]),
            int(d["shape_count"]),
        )


def _rhyme_letters(ends: list[list[str]], rule: str) -> str:
    """Rhyme letters of a shape from the clause-end characters of its ci (ci x clauses)."""
    n = len(ends[0])
    names: dict[str | None, int] = {}
    classes = np.array(
        [[names.setdefault(rhyme_class(ch, rule) if ch else None, len(names)) for ch in row] for row in ends]
    )
    none = names.get(None, -1)
    valid = classes != none
    same = (classes[:, :, None] == classes[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    linked = same.mean(axis=0) >= RHYME_AGREEMENT
    np.fill_diagonal(linked, False)
    letters = ["X"] * n
    k = 0
    for i in range(n):
        if letters[i] != "X" or not linked[i].any():
            continue
        todo, letter = [i], LETTERS[min(k, len(LETTERS) - 1)]
        k += 1
        while todo:  # the clause ends linked to i, directly or through others
            j = todo.pop()
            if letters[j] == "X":
                letters[j] = letter
                todo += [m for m in np.flatnonzero(linked[j]).tolist() if letters[m] == "X"]
    return "".join(letters)


def mine_templates(songs: Iterable[Sequence[str]], rule: str = RULE) -> dict[str, Template]:
    """The template of every tune among `songs` (each a title line, then the lines of one ci)."""
    by_tune: dict[str, list[Sequence[str]]] = defaultdict(list)
    for song in songs:
        tune = tune_of(song[0]) if song else None
        if tune is not None and len(song) > 1:
            by_tune[tune].append(song[1:])
    templates = {}
    for tune, cis in by_tune.items():
        shapes = [shape_of(ci) for ci in cis]
        (clauses, shape_count), *_ = Counter(c for c, _ in shapes).most_common(1)
        if not clauses:
            continue
        same = [i for i, (c, _) in enumerate(shapes) if c == clauses]
        (breaks, _), *_ = Counter(shapes[i][1] for i in same).most_common(1)
        rhyme = _rhyme_letters([clause_ends(cis[i]) for i in same], rule)
        templates[tune] = Template(tune, list(clauses), list(breaks), rhyme, len(cis), shape_count)
    return templates


def templates_to_dict(templates: dict[str, Template], rule: str = RULE) -> dict:
    """Templates as the plain dict a checkpoint holds (loadable with `weights_only`)."""
    return {"rule": rule, "tunes": {t: tpl.to_dict() for t, tpl in templates.items()}}


def templates_from_dict(d: dict | None) -> dict[str, Template]:
    if not d:
        return {}
    return {tune: Template.from_dict(tune, t) for tune, t in d["tunes"].items()}


def rhyme_hits(lines: Sequence[str], template: Template, rule: str = "shisan") -> tuple[int, int]:
    """(rhyme positions that rhyme, rhyme positions) of a ci in the template's shape: a position rhymes when
    its clause ends in the most common class of its letter's positions and that class holds two of them."""
    ends = clause_ends(lines)
    hits = total = 0
    for letter in sorted(set(template.rhyme) - {"X"}):
        where = [i for i, r in enumerate(template.rhyme) if r == letter]
        classes = [rhyme_class(ends[i], rule) if i < len(ends) and ends[i] else None for i in where]
        counts = Counter(c for c in classes if c is not None)
        top, n = counts.most_common(1)[0] if counts else (None, 0)
        total += len(where)
        hits += n if n >= 2 else 0
    return hits, total
