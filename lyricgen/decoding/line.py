"""One line of form decoding for several samples at once: the rules (`lyricgen.decoding.rules`) say what each
row may write next, the sampler draws among it, and each sample keeps the best of its `best_of` candidates.

A sample's line starts as one row and branches into `best_of` candidate rows at the first step where the
mask takes away more than `1 - BRANCH_MASS` of the probability: until then the constraints do not bite and
the candidates would only repeat free sampling at `best_of` times the cost. For a single sample that start
is drawn with its state in Python numbers (`RowState`, the rules' scalar methods), at a fraction of the
tensor loop's overhead, with the same draws; the tensor loop takes over where the mask bites.

The candidate kept is the one the constraints bent least, nudged toward likely lines: the log of the
probability mass the mask left over its steps (its importance weight p(line) / q(line)) plus
`LIKELIHOOD_WEIGHT` times its mean log-likelihood. The likeliest line alone (lowest mean NLL) reads smoother
but collapses onto frequent words; the weight alone keeps free sampling's variety.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from lyricgen.decoding.rules import LineBudget, LineState, Rule
from lyricgen.decoding.sampling import RepetitionPenalty, Sampler
from lyricgen.decoding.tables import WordTables
from lyricgen.rnnlm import RNNLM, Hidden, assign_hidden, select_hidden

BRANCH_MASS = 0.8  # a line branches into best_of candidates where the mask first leaves less than this
LOG_BRANCH_MASS = math.log(BRANCH_MASS)
LIKELIHOOD_WEIGHT = 0.42  # measured against 0, 0.3, 0.35, 0.5 and 1 (docs/generation.md, "Choosing the kept candidate")


@dataclass
class Candidates:
    """What the decoder keeps for each row besides the rules' state: the tokens, the network's state and
    logits, and the figures that choose the kept candidate."""

    logits: torch.Tensor  # the next step's logits (rows x vocab)
    hidden: Hidden
    tokens: torch.Tensor  # rows x the longest line; idle rows write the line's end
    final_hidden: Hidden  # the state and logits after each row's end
    final_logits: torch.Tensor
    log_mass: torch.Tensor  # sum of the log of the probability mass the mask left at each step
    logp: torch.Tensor  # sum of the log-likelihood under the model itself
    ntok: torch.Tensor
    finished: torch.Tensor
    dead: torch.Tensor  # a step left the row nothing to write

    @classmethod
    def start(cls, logits: torch.Tensor, hidden: Hidden, length: int, end: int) -> Candidates:
        rows, device = logits.size(0), logits.device
        return cls(
            logits=logits,
            hidden=hidden,
            tokens=torch.full((rows, length), end, dtype=torch.long, device=device),
            final_hidden=select_hidden(hidden, torch.arange(rows, device=device)),
            final_logits=torch.zeros_like(logits),
            log_mass=torch.zeros(rows, device=device),
            logp=torch.zeros(rows, device=device),
            ntok=torch.zeros(rows, dtype=torch.long, device=device),
            finished=torch.zeros(rows, dtype=torch.bool, device=device),
            dead=torch.zeros(rows, dtype=torch.bool, device=device),
        )

    def select(self, rows: torch.Tensor) -> Candidates:
        hidden = {"hidden": select_hidden(self.hidden, rows), "final_hidden": select_hidden(self.final_hidden, rows)}
        tensors = {f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self) if f.name not in hidden}
        return Candidates(**tensors, **hidden)


@dataclass
class Line:
    """Each sample's kept line: its tokens (its end excluded), the network's state and logits after it, the
    rhyme class it ended in, and whether the sample got a line at all."""

    tokens: list[list[int]]
    hidden: Hidden
    logits: torch.Tensor
    classes: torch.Tensor
    ok: torch.Tensor


class LineDecoder:
    """Decodes one line for the rows of `state`, under `budget` and `rules` (masks applied in order)."""

    def __init__(
        self,
        net: RNNLM,
        tables: WordTables,
        sampler: Sampler,
        budget: LineBudget,
        rules: list[Rule],
        penalty: RepetitionPenalty | None,
        best_of: int,
        end: int,
    ) -> None:
        self.net, self.t, self.sampler, self.budget, self.rules = net, tables, sampler, budget, rules
        self.penalty, self.best_of, self.end = penalty, best_of, end

    def decode(self, state: LineState, cand: Candidates, fast: bool = True) -> Line:
        """The line of each row of `state` (one a sample). `fast`: a single sample's line starts in Python
        numbers (the same draws as the tensor loop; False is for the tests that say so)."""
        self.state, self.cand, self.per = state, cand, 1  # rows a sample: best_of once the line has branched
        start, branch_now = 0, False
        # one sample that will branch, no keywords to track, no penalty: the rules' scalar methods suffice
        if (
            fast
            and len(state.chars) == 1
            and self.best_of > 1
            and self.budget.table is not None
            and self.penalty is None
        ):
            start, branch_now = self._start_unbranched()
        for pos in range(start, self.cand.tokens.size(1)):
            if not self._step(pos, branch_now):
                break
            branch_now = False
        return self._best()

    def _allowed(self) -> torch.Tensor:
        allowed = self.budget.allowed(self.state)
        for rule in self.rules:
            rule.mask(self.state, allowed)
        return allowed

    def _step(self, pos: int, branch_now: bool) -> bool:
        """One token for every row; False when no row has anything left to write."""
        cand = self.cand
        active = ~cand.finished & ~cand.dead
        if not bool(active.any()):
            return False
        allowed = self._allowed()
        stuck = ~allowed.any(dim=1)
        if bool(stuck.any()):
            cand.dead |= active & stuck
            active &= ~stuck
            if not bool(active.any()):
                return False
        if not bool(active.all()):
            allowed &= active[:, None]
            allowed[:, self.end] |= ~active  # finished or dead rows idle on the line's end
        logits = cand.logits if self.penalty is None else self.penalty(cand.logits, self.state.seen)
        token, mass = (None, None) if branch_now else self.sampler.pick_masked(logits, allowed)
        if self.per == 1 and self.best_of > 1 and (branch_now or bool((mass < LOG_BRANCH_MASS)[active].any())):
            # the mask bites: this step is drawn again, by best_of copies of each row
            rows = torch.arange(len(active), device=active.device).repeat_interleave(self.best_of)
            self.state, self.cand, self.per = self.state.select(rows), cand.select(rows), self.best_of
            allowed, active, logits = allowed[rows], active[rows], logits[rows]
            token, mass = self.sampler.pick_masked(logits, allowed)
        self._advance(pos, token, mass, active)
        return True

    def _advance(self, pos: int, token: torch.Tensor, mass: torch.Tensor, active: torch.Tensor) -> None:
        """Write `token` in every row (idle rows write the line's end again) and step the network."""
        cand, state, t = self.cand, self.state, self.t
        cand.log_mass += torch.where(active, mass, 0.0)  # the log of the mass the mask left to the sampler
        logp = cand.logits.log_softmax(dim=1).gather(1, token[:, None]).squeeze(1)  # under the model itself
        cand.logp += torch.where(active, logp, 0.0)
        cand.ntok += active.long()
        cand.tokens[:, pos] = token
        is_word = (token != self.end) & (token != t.space)
        state.advance(token, is_word, t)
        self.budget.advance(state, token, is_word)
        for rule in self.rules:
            rule.advance(state, token, is_word)
        if self.penalty is not None:
            self.penalty.mark(state.seen, token, active)
        out, cand.hidden = self.net(token[:, None], cand.hidden)
        cand.logits = out[:, 0].float()
        ended = active & (token == self.end)
        if bool(ended.any()):
            rows = ended.nonzero().squeeze(1)
            assign_hidden(cand.final_hidden, rows, cand.hidden, rows)
            cand.final_logits[rows] = cand.logits[rows]
        cand.finished |= ended

    def _start_unbranched(self) -> tuple[int, bool]:
        """The start of a single sample's line, before it branches, in Python numbers: the same draws as the
        tensor loop, which takes over at the returned position (and branches there at once if told so)."""
        cand, t = self.cand, self.t
        row = self.state.row(0)
        logits, tokens = cand.logits, []
        log_mass = logp = torch.zeros(1, device=logits.device)  # float32 sums, as in the tensor loop
        branch_now = finished = dead = False
        for _ in range(cand.tokens.size(1)):
            allowed = self.budget.allowed_row(row)
            for rule in self.rules:
                rule.mask_row(row, allowed)
            if not bool(allowed.any()):
                dead = True
                break
            token, mass = self.sampler.pick_masked(logits, allowed[None])
            if float(mass[0]) < LOG_BRANCH_MASS:
                branch_now = True
                break
            tok = int(token[0])
            log_mass = log_mass + mass
            logp = logp + logits.log_softmax(dim=1)[:, tok]
            tokens.append(tok)
            row.advance(tok, tok != self.end and tok != t.space, t)
            out, cand.hidden = self.net(token[:, None], cand.hidden)
            logits = out[:, 0].float()
            if tok == self.end:
                finished = True
                cand.final_hidden = select_hidden(cand.hidden, torch.zeros(1, dtype=torch.long, device=logits.device))
                cand.final_logits[0] = logits[0]
                break
        n = len(tokens)
        cand.tokens[0, :n] = torch.tensor(tokens, dtype=torch.long)
        cand.ntok[0], cand.log_mass[0], cand.logp[0] = n, log_mass[0], logp[0]
        cand.finished[0], cand.dead[0], cand.logits = finished, dead, logits
        self.state.set_row(0, row)
        return n, branch_now

    def _best(self) -> Line:
        """Each sample's kept candidate (see the module's docstring)."""
        cand, t = self.cand, self.t
        good = cand.finished & ~cand.dead
        crit = cand.log_mass + LIKELIHOOD_WEIGHT * cand.logp / cand.ntok.clamp(min=1)
        best = torch.where(good, crit, -math.inf).view(-1, self.per).argmax(dim=1)
        rows = torch.arange(len(best), device=best.device) * self.per + best
        last = self.state.last_word[rows]
        classes = torch.where(last >= 0, t.cls[last.clamp(min=0)], t.none)
        return Line(
            [cand.tokens[r, : int(cand.ntok[r])].tolist() for r in rows.tolist()],
            select_hidden(cand.final_hidden, rows),
            cand.final_logits[rows],
            classes,
            good[rows],
        )
