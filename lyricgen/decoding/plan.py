"""The plan of a form decoding (`lyricgen.decoding.form`): what each line (or clause of a tune) must be -
its length, acrostic character, rhyme group and keywords - checked before decoding. A line that cannot be
written at all is refused (LyricgenError) with the line and the constraint named."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lyricgen.data.vocab import Vocab
from lyricgen.decoding.options import DecodingOptions
from lyricgen.decoding.tables import WordTables
from lyricgen.decoding.templates import Template
from lyricgen.errors import LyricgenError
from lyricgen.prosody import rhyme_class


@dataclass
class LineSpec:
    lo: int  # fewest characters
    hi: int  # most characters
    acrostic: str | None  # the character its first word must begin with
    group: int | None  # rhyme group (index of its letter), None if free
    keywords: list[int]  # keyword ids planned for this line
    end: tuple[int, ...] = ()  # what ends it: its first token is sampled where it may end, the rest follow;
    # a line break when empty (a clause of a tune ends on its punctuation, then maybe a line break)


class FormPlan:
    """What each line must be, checked for feasibility before decoding (LyricgenError if it cannot be)."""

    def __init__(
        self,
        opts: DecodingOptions,
        tables: WordTables,
        vocab: Vocab,
        prompt_line: list[int],
        template: Template | None = None,
    ) -> None:
        self.tables = tables
        self.unit = "clause" if template else "line"
        n_lines = len(template.clauses) if template else opts.form_lines()
        chars = [n for n, _ in template.clauses] if template else opts.line_chars_list()
        scheme = template.rhyme if template else opts.rhyme or ""
        letters = sorted(set(scheme) - {"X"})
        self.letters = letters
        acro = opts.acrostic or ""
        if len(acro) > n_lines:
            fix = (
                f"{template.tune} has {n_lines} clauses; give at most {n_lines} characters"
                if template
                else f"lines={n_lines}; give lines={len(acro)} or more"
            )
            raise LyricgenError(f"acrostic {acro!r} has {len(acro)} characters but {fix}")
        self.prompt_chars = sum(int(tables.chars[t]) for t in prompt_line)
        self.lines: list[LineSpec] = []
        for i in range(n_lines):
            lo, hi = (chars[i % len(chars)],) * 2 if chars else (1, opts.max_line_chars)
            letter = scheme[i % len(scheme)] if scheme else "X"
            group = None if letter == "X" else letters.index(letter)
            end = self._clause_end(template, i, vocab) if template else ()
            self.lines.append(LineSpec(lo, hi, acro[i] if i < len(acro) else None, group, [], end))
        self._check_prompt(prompt_line, vocab)
        self.feasible = [self._feasible_classes(i, prompt_line) for i in range(n_lines)]
        for i, ok in enumerate(self.feasible):
            if not bool(ok.any()):
                raise LyricgenError(
                    f"{self.where(i)} cannot be written: no words the model knows fill it exactly; "
                    "change line_chars or acrostic"
                )
        self.group_classes = self._group_classes(opts, vocab)
        self._plan_keywords(opts, vocab)

    def _clause_end(self, template: Template, i: int, vocab: Vocab) -> tuple[int, ...]:
        """The tokens after clause i of a tune: its punctuation (one token, or one a character), then a line
        break where the template's line ends."""
        punct = template.clauses[i][1]
        tokens = [punct] if punct in vocab.stoi else list(punct)
        missing = [p for p in tokens if p not in vocab.stoi]
        if missing or not tokens:
            raise LyricgenError(
                f"the template of {template.tune} ends clause {i + 1} with {punct or 'no punctuation'!r}, which this "
                "model cannot write; generate with a model trained on ci (data=songci)"
            )
        ids = [vocab.stoi[p] for p in tokens]
        return (*ids, self.tables.newline) if i in template.line_ends else tuple(ids)

    def where(self, i: int) -> str:
        """The constraints of line i, in the user's words."""
        spec = self.lines[i]
        parts = [f"{spec.hi} characters" if spec.lo == spec.hi else f"at most {spec.hi} characters"]
        if spec.acrostic:
            parts.append(f"beginning with {spec.acrostic!r}")
        if spec.group is not None:
            parts.append(f"rhyme letter {self.letters[spec.group]}")
        return f"{self.unit} {i + 1} ({', '.join(parts)})"

    def _check_prompt(self, prompt_line: list[int], vocab: Vocab) -> None:
        if not prompt_line:
            return
        spec = self.lines[0]
        text = "".join(vocab.decode(prompt_line))
        if self.prompt_chars > spec.hi:
            raise LyricgenError(
                f"start_word's line {text!r} has {self.prompt_chars} characters, more than {self.where(0)}; "
                "give a shorter start_word or a larger line_chars"
            )
        first = next((ch for ch in text if ch.isalnum()), "")
        if spec.acrostic and first != spec.acrostic:
            raise LyricgenError(
                f"start_word {text!r} does not begin with the acrostic's first character {spec.acrostic!r}; "
                "start with it or leave start_word empty"
            )

    def first_words(self, i: int) -> torch.Tensor:
        spec, t = self.lines[i], self.tables
        if spec.acrostic is None:
            return t.word_ok
        starts = t.starting_with(spec.acrostic)
        if not bool(starts.any()):
            raise LyricgenError(
                f"acrostic character {spec.acrostic!r} of line {i + 1}: no word the model knows begins with it; "
                "choose another character"
            )
        return starts

    def _feasible_classes(self, i: int, prompt_line: list[int]) -> torch.Tensor:
        """Rhyme classes (and the no-class column) that line i can end on, given its length and acrostic."""
        spec, t = self.lines[i], self.tables
        out = torch.zeros(t.none + 1, dtype=torch.bool, device=t.chars.device)
        if i == 0 and prompt_line:
            room = spec.hi - self.prompt_chars
            if room == 0:
                out[t.class_of(prompt_line[-1])] = self.prompt_chars >= spec.lo
                return out
            return t.class_min <= room
        starts = self.first_words(i)
        direct = starts & (t.chars >= spec.lo) & (t.chars <= spec.hi)
        out[t.cls[direct]] = True
        shorter = t.chars[starts & (t.chars < spec.hi)]
        if len(shorter):
            out |= int(shorter.min()) + t.class_min <= spec.hi
        return out

    def _group_classes(self, opts: DecodingOptions, vocab: Vocab) -> list[torch.Tensor]:
        """For each rhyme letter, the classes every one of its lines can end on."""
        t = self.tables
        fixed = None
        if opts.rhyme_with:
            word = opts.rhyme_with
            name = rhyme_class(word, t.rule)
            if name is None:
                raise LyricgenError(
                    f"rhyme_with {word!r} does not end in a Chinese character with a rhyme class; "
                    "give a word such as 光"
                )
            fixed = t.names.index(name)
        groups = []
        for g, letter in enumerate(self.letters):
            lines = [i for i, s in enumerate(self.lines) if s.group == g]
            ok = torch.ones(t.none + 1, dtype=torch.bool, device=t.chars.device)
            ok[t.none] = False
            for i in lines:
                if fixed is not None and letter == "A" and not bool(self.feasible[i][fixed]):
                    raise LyricgenError(
                        f"{self.where(i)} cannot end in the {t.names[fixed]} class of rhyme_with={opts.rhyme_with!r}; "
                        "change line_chars, acrostic or rhyme_with"
                    )
                ok &= self.feasible[i]
            if fixed is not None and letter == "A":
                ok = torch.zeros_like(ok)
                ok[fixed] = True
            if lines and not bool(ok.any()):
                listed = ", ".join(str(i + 1) for i in lines)
                raise LyricgenError(
                    f"lines {listed} (rhyme letter {letter}) cannot all end in one rhyme class with these lengths and "
                    f"acrostic characters ({self.where(lines[-1])}); change line_chars, acrostic or rhyme"
                )
            groups.append(ok)
        return groups

    def min_end(self, i: int) -> int:
        """Characters of the shortest word that may end line i."""
        spec = self.lines[i]
        if spec.group is None:
            return 1
        return int(self.tables.class_min[self.group_classes[spec.group]].min())

    def _plan_keywords(self, opts: DecodingOptions, vocab: Vocab) -> None:
        """Each keyword goes to one line, spread over the lyrics, where it fits."""
        words = opts.keyword_list()
        n = len(self.lines)
        for j, word in enumerate(words):
            kid = vocab.stoi[word]
            klen = int(self.tables.chars[kid])
            if klen == 0:
                raise LyricgenError(f"keyword {word!r} has no characters that count; give a word")
            preferred = (j * n) // len(words)
            for i in sorted(range(n), key=lambda i: (abs(i - preferred), i)):
                spec = self.lines[i]
                first = 0
                if spec.acrostic and self.tables.first[kid] != spec.acrostic:
                    first = int(self.tables.chars[self.first_words(i)].min())
                used = sum(int(self.tables.chars[k]) for k in spec.keywords) + (self.prompt_chars if i == 0 else 0)
                if used + first + klen + self.min_end(i) <= spec.hi:
                    spec.keywords.append(kid)
                    break
            else:
                raise LyricgenError(
                    f"keyword {word!r} ({klen} characters) fits in no line with these line lengths and acrostic "
                    f"characters (e.g. {self.where(preferred)}); allow longer lines or fewer keywords"
                )
