"""The rules of form decoding, one small class each, and the state of a line that they read.

A line is decoded for several rows at once (one a sample, then `best_of` candidates a sample once the line
branches, `lyricgen.decoding.line`). Before each step the rules say which tokens each row may write next:

- `LineBudget`: the base. A word fits if the line can end right after it (its length reached, a word it may
  end on, its keywords written) or if the room left still holds the keywords and the shortest word it may
  end on; a space needs that room too, and the line's end needs the length, the ending and the keywords.
  Which words a line may end on is the product of two rules: `Rhyme` (the classes its rhyme group may end
  in) and `FreshEndings` (not a word an earlier line of the group ended on).
- `Acrostic` (the first word begins with the line's character), `Spacing` (no space and no line end at the
  start of a line or after a space) and `NoCopy` (no word that completes a run of the training text) then
  clear what they forbid, in place, as HF transformers' logits processors each change the scores.

Each has a tensor method (`mask`, all rows) and a scalar one (`mask_row`, one row in Python numbers) for the
unbranched start of a single sample's line, where tensor calls would cost more than the network step; the
two read the same fields, one as tensors (`LineState`) and one as numbers (`RowState`). What a rule keeps
track of (the last words for NoCopy, the keywords still to write) it updates in `advance`/`advance_row`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from lyricgen.data.ngrams import NgramIndex
from lyricgen.decoding.plan import FormPlan, LineSpec
from lyricgen.decoding.tables import BIG, WordTables


@dataclass
class LineState:
    """What each row has written on its line (rows on dim 0)."""

    sample: torch.Tensor  # the sample each row writes for (its index among the line's samples)
    chars: torch.Tensor  # characters on the line so far (the prompt's included)
    last_word: torch.Tensor  # the last word on the line, -1 before the first
    after_space: torch.Tensor  # the last token was a space
    context: torch.Tensor | None = None  # NoCopy: the last n - 1 words (-1 where there are fewer)
    keywords_left: torch.Tensor | None = None  # LineBudget: the line's keywords not written yet (rows x keywords)
    seen: torch.Tensor | None = None  # RepetitionPenalty: the words the sample has used (rows x vocab)
    written: int = 0  # tokens written on this line by the decoder (the same for every row)

    @classmethod
    def start(cls, rows: int, words: list[int], tables: WordTables, device: torch.device) -> LineState:
        """`rows` rows that begin the line with `words` (the prompt's, on the first line; else none)."""
        counted = sum(tables.chars_list[w] for w in words)
        return cls(
            sample=torch.arange(rows, device=device),
            chars=torch.full((rows,), counted, dtype=torch.long, device=device),
            last_word=torch.full((rows,), words[-1] if words else -1, dtype=torch.long, device=device),
            after_space=torch.zeros(rows, dtype=torch.bool, device=device),
        )

    def select(self, rows: torch.Tensor) -> LineState:
        """The state of rows `rows` (e.g. each row repeated `best_of` times when the line branches)."""
        picked = {
            f.name: value[rows] if isinstance(value, torch.Tensor) else value
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) is not None
        }
        return dataclasses.replace(self, **picked)

    def advance(self, token: torch.Tensor, is_word: torch.Tensor, tables: WordTables) -> None:
        self.chars += tables.chars[token]  # line breaks, spaces and punctuation count 0
        self.after_space = token == tables.space
        self.last_word = torch.where(is_word, token, self.last_word)
        self.written += 1

    def row(self, i: int) -> RowState:
        context = [] if self.context is None else [w for w in self.context[i].tolist() if w >= 0]
        return RowState(
            int(self.sample[i]), int(self.chars[i]), int(self.last_word[i]), bool(self.after_space[i]), context
        )

    def set_row(self, i: int, row: RowState) -> None:
        """Row i takes the values of `row` (where the unbranched start hands over to the tensor loop)."""
        self.chars[i], self.last_word[i], self.after_space[i] = row.chars, row.last_word, row.after_space
        self.written = row.written
        if self.context is not None:
            width = self.context.size(1)
            tail = row.context[len(row.context) - min(len(row.context), width) :]
            self.context[i] = -1
            if tail:
                self.context[i, width - len(tail) :] = torch.tensor(tail)


@dataclass
class RowState:
    """`LineState` of one row in Python numbers: the unbranched start of a single sample's line."""

    sample: int
    chars: int
    last_word: int
    after_space: bool
    context: list[int]  # every word since the line's start (NoCopy reads the last n - 1)
    written: int = 0

    def advance(self, token: int, is_word: bool, tables: WordTables) -> None:
        if is_word:
            self.chars += tables.chars_list[token]
            self.last_word = token
            self.context.append(token)
        self.after_space = token == tables.space
        self.written += 1


class Rhyme:
    """The rhyme classes each sample's line may end in: its group's class once the group has one; before that
    every class each line of the group can end in, and of those the ones no other letter of the sample has
    taken, where one is left (a new letter, a new class). A line of no group (X) may end anywhere."""

    def __init__(self, plan: FormPlan, spec: LineSpec, group_cls: torch.Tensor) -> None:
        """`group_cls`: each sample's class of every rhyme letter so far (samples x letters, -1: none yet)."""
        t = self.tables = plan.tables
        rows, device = group_cls.size(0), group_cls.device
        if spec.group is None:
            self.classes = torch.ones(rows, t.none + 1, dtype=torch.bool, device=device)
            self.min_end = torch.ones(rows, dtype=torch.long, device=device)
            return
        classes = plan.group_classes[spec.group].expand(rows, -1).clone()
        chosen = group_cls[:, spec.group]
        has = chosen >= 0
        classes[has] = False
        classes[has, chosen[has]] = True
        taken = torch.zeros_like(classes)
        taken.scatter_(1, group_cls.clamp(min=0), group_cls >= 0)
        new = classes & ~taken
        use = ~has & new.any(dim=1)
        classes[use] = new[use]
        self.classes = classes
        self.min_end = torch.where(classes, t.class_min, BIG).min(dim=1).values  # characters of the shortest ending

    def ends(self) -> torch.Tensor:
        """The words each sample's line may end on (samples x vocab)."""
        return self.classes.index_select(1, self.tables.cls)


class FreshEndings:
    """A rhyme group's later lines end on other words than its earlier ones did, in classes with enough words
    for that (`WordTables.rich`); after a failed try the line may repeat an ending (`ended` None)."""

    def __init__(self, ended: torch.Tensor | None) -> None:
        self.ended = ended  # samples x vocab: the words that ended the group's earlier lines, rich classes only

    def ends(self, ends: torch.Tensor) -> torch.Tensor:
        return ends if self.ended is None else ends & ~self.ended


class LineBudget:
    """The line's length with its look-ahead: which words still fit, and when a space or the line's end may
    come, given the room left, the words the line may end on (`ends`, samples x vocab; `min_end`, the
    characters of the shortest) and the keywords it has still to write.

    Without keywords, what fits depends only on the characters used: a table of it for every count
    (samples x (hi + 1) x vocab) makes a step one lookup."""

    def __init__(
        self,
        spec: LineSpec,
        tables: WordTables,
        ends: torch.Tensor,
        min_end: torch.Tensor,
        end: int,
        keywords: torch.Tensor | None = None,
    ) -> None:
        self.lo, self.hi, self.t, self.end = spec.lo, spec.hi, tables, end
        self.ends, self.min_end = ends, min_end
        self.keywords = keywords if keywords is not None and len(keywords) else None
        self.table = self._table() if self.keywords is None else None

    def _table(self) -> torch.Tensor:
        t = self.t
        used = torch.arange(self.hi + 1, device=t.chars.device)
        after = used[None, :, None] + t.chars[None, None, :]  # 1 x (hi + 1) x vocab
        can_end = (after >= self.lo) & self.ends[:, None, :]
        can_go_on = (self.hi - after) >= self.min_end[:, None, None]
        return t.word_ok & (after <= self.hi) & (can_end | can_go_on)

    def start(self, state: LineState, seen: torch.Tensor) -> None:
        """The keywords each row has still to write: those the sample has not used yet (`seen`, rows x vocab)."""
        if self.keywords is not None:
            state.keywords_left = ~seen[:, self.keywords]

    def allowed(self, state: LineState) -> torch.Tensor:
        """What each row may write next as far as the budget goes (rows x vocab)."""
        t, hi = self.t, self.hi
        min_end = self.min_end[state.sample]
        if self.keywords is None:
            at = state.chars.clamp(max=hi) + state.sample * (hi + 1)
            allowed = self.table.view(-1, self.table.size(-1)).index_select(0, at)
            need = min_end
            placed = None
        else:  # what may go in depends on the keywords each row has still to write
            need = (state.keywords_left * t.chars[self.keywords]).sum(dim=1)
            after = state.chars[:, None] + t.chars[None, :]
            still = torch.zeros_like(after, dtype=torch.bool)
            still[:, self.keywords] = state.keywords_left
            need_after = need[:, None] - torch.where(still, t.chars[None, :], 0)
            can_end = (after >= self.lo) & self.ends[state.sample] & (need_after == 0)
            can_go_on = (hi - after) >= need_after + min_end[:, None]
            allowed = t.word_ok[None, :] & (after <= hi) & (can_end | can_go_on)
            placed = need == 0
            need = need + min_end
        if t.space >= 0:
            allowed[:, t.space] = hi - state.chars >= need
        ends = (state.chars >= self.lo) & self.ends[state.sample, state.last_word.clamp(min=0)]
        allowed[:, self.end] = ends if placed is None else ends & placed
        return allowed

    def allowed_row(self, row: RowState) -> torch.Tensor:
        """`allowed` for one row (a line without keywords)."""
        allowed = self.table[row.sample, min(row.chars, self.hi)].clone()
        if self.t.space >= 0:
            allowed[self.t.space] = self.hi - row.chars >= int(self.min_end[row.sample])
        allowed[self.end] = row.chars >= self.lo and bool(self.ends[row.sample, max(row.last_word, 0)])
        return allowed

    def advance(self, state: LineState, token: torch.Tensor, is_word: torch.Tensor) -> None:
        if self.keywords is not None:
            state.keywords_left &= ~((self.keywords[None, :] == token[:, None]) & is_word[:, None])


class Rule:
    """A rule that clears what it forbids from `allowed` (rows x vocab, or one row for `mask_row`), in place."""

    def start(self, state: LineState, words: list[int]) -> None:
        """Set what the rule keeps track of, before the line's first step (`words`: the line's start)."""

    def mask(self, state: LineState, allowed: torch.Tensor) -> None:
        raise NotImplementedError

    def mask_row(self, row: RowState, allowed: torch.Tensor) -> None:
        raise NotImplementedError

    def advance(self, state: LineState, token: torch.Tensor, is_word: torch.Tensor) -> None:
        """Keep track of the tokens just written (`is_word`: a word, not a space or the line's end)."""


class Acrostic(Rule):
    """The line's first word begins with its acrostic character (`starts`: the words that do). Only for a line
    that starts empty (a prompt on the first line already begins with it, `FormPlan` checks)."""

    def __init__(self, starts: torch.Tensor) -> None:
        self.starts = starts

    def mask(self, state: LineState, allowed: torch.Tensor) -> None:
        if state.written == 0:
            allowed &= self.starts

    def mask_row(self, row: RowState, allowed: torch.Tensor) -> None:
        if row.written == 0:
            allowed &= self.starts


class Spacing(Rule):
    """No space and no line end before the line's first word or right after a space."""

    def __init__(self, tables: WordTables, end: int) -> None:
        self.columns = [c for c in (tables.space, end) if c >= 0]

    def mask(self, state: LineState, allowed: torch.Tensor) -> None:
        free = ~state.after_space & (state.chars >= 1)
        for column in self.columns:
            allowed[:, column] &= free

    def mask_row(self, row: RowState, allowed: torch.Tensor) -> None:
        if row.after_space or row.chars < 1:
            allowed[self.columns] = False


class NoCopy(Rule):
    """No run of `n` words of the training text: a word that would complete one is masked (`NgramIndex`)."""

    def __init__(self, ngrams: NgramIndex, n: int) -> None:
        self.ngrams, self.n = ngrams, n

    def start(self, state: LineState, words: list[int]) -> None:
        """The last n - 1 `words` before the line's first step, for every row."""
        width = self.n - 1
        state.context = torch.full((len(state.chars), width), -1, dtype=torch.long, device=state.chars.device)
        tail = words[-width:]
        if tail:
            state.context[:, width - len(tail) :] = torch.tensor(tail, device=state.chars.device)

    def _blocked(self, context: list[int]) -> torch.Tensor | None:
        blocked = self.ngrams.followers(context)
        return torch.from_numpy(np.asarray(blocked)) if len(blocked) else None

    def mask(self, state: LineState, allowed: torch.Tensor) -> None:
        full = (state.context >= 0).all(dim=1)
        for r in full.nonzero().squeeze(1).tolist():
            blocked = self._blocked(state.context[r].tolist())
            if blocked is not None:
                allowed[r, blocked.to(allowed.device)] = False

    def mask_row(self, row: RowState, allowed: torch.Tensor) -> None:
        if len(row.context) >= self.n - 1:
            blocked = self._blocked(row.context[len(row.context) - (self.n - 1) :])
            if blocked is not None:
                allowed[blocked.to(allowed.device)] = False

    def advance(self, state: LineState, token: torch.Tensor, is_word: torch.Tensor) -> None:
        shifted = torch.cat([state.context[:, 1:], token[:, None]], dim=1)
        state.context = torch.where(is_word[:, None], shifted, state.context)
