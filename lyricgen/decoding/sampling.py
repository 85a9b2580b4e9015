"""Sampling one token at a time: greedy, temperature, top-k, nucleus, repetition penalty, batched samples.

Decoding is incremental: the prompt runs through the network once to warm the hidden state, then
each new token costs one RNN step; `num_samples` samples are decoded together as one batch.

The rules that change the scores are small classes, as in HF transformers' logits processors:
`RepetitionPenalty` and `Truncation` (top-k, then top-p: the one place both are written); `Sampler` applies
the temperature and picks, among all words (free decoding) or among those a form's rules allow
(`pick_masked`, `lyricgen.decoding.line`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lyricgen.decoding.options import DecodingOptions
from lyricgen.rnnlm import RNNLM

TRIES = 8  # rejection rounds before the exact masked draw (a row misses 8 times with p <= (1 - top_p) ** 8)


def _cpu_threshold(probs: np.ndarray, top_p: float | np.ndarray) -> np.ndarray:
    """Per row, the probability of the last word the nucleus keeps (words at least as likely are kept);
    `top_p` may be a column of per-row targets for rows that are not normalised.

    On the CPU, torch.sort of a few thousand floats costs about as much as the RNN step (~100 us) and
    numpy's argsort a quarter of that; numpy's sort of the values alone (no indices) takes ~6 us a row.
    """
    top = -np.sort(-probs, axis=-1)
    before = (np.cumsum(top, axis=-1) < top_p).sum(axis=-1)  # words whose running mass is below top_p
    return top[np.arange(len(top)), np.minimum(before, top.shape[-1] - 1)]


def _nucleus_keep(weights: torch.Tensor, top_p: float) -> torch.Tensor:
    """The smallest set of likeliest words whose share of each row's weight reaches `top_p` (bool)."""
    if weights.device.type == "cpu":
        target = top_p * weights.sum(dim=-1, keepdim=True).numpy()
        return weights >= torch.from_numpy(_cpu_threshold(weights.numpy(), target))[:, None]
    probs = weights / weights.sum(dim=-1, keepdim=True)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_p.cumsum(dim=-1) - sorted_p < top_p  # words before it have not reached top_p yet
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, keep_sorted)


def draw(weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One id per row, with probability proportional to `weights` (rows x vocab, >= 0, not normalised).

    Inverse-CDF sampling: the same distribution as torch.multinomial, about ten times faster on the CPU
    for one draw from a vocabulary of thousands (a cumsum and a binary search).
    """
    cdf = weights.cumsum(dim=-1)
    u = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.size(-1) - 1)


class Truncation:
    """Top-k, then nucleus (top-p) sampling: a draw picks among the `top_k` likeliest words (ties with the
    k-th included; 0: all), then among the fewest likeliest of those whose probability reaches `top_p`.

    Everything takes weights: rows x vocab of unnormalised probabilities (0 for a word that may not be drawn
    at all, e.g. one a form's rules mask). `keep` is the definition, by masking; `draw` samples from what it
    keeps. On the CPU `draw` does so without sorting the vocabulary: top-k keeps the words at least as heavy
    as the k-th (np.partition finds it in linear time), and the nucleus is drawn by rejection: draw a word
    from the (top-k) weights and keep it if the words strictly heavier than it hold less than `top_p` of
    them; draw again for the rows that missed, and after `TRIES` misses draw from `keep`'s weights. A draw
    is kept with probability >= top_p (~1.05 draws a step at 0.95), and one above (1 - top_p) of the weight
    is kept without a pass over the vocabulary (the heavier words hold at most the rest). Sorting the
    vocabulary was most of what sampling cost beyond greedy decoding; one row takes a path on scalars (half
    the array calls).
    """

    def __init__(self, top_k: int = 0, top_p: float = 1.0) -> None:
        self.top_k, self.top_p = top_k, top_p

    def keep(self, weights: torch.Tensor) -> torch.Tensor:
        """`weights` with every word outside the truncation set to 0."""
        if self.top_k > 0:
            kth = torch.topk(weights, min(self.top_k, weights.size(-1)), dim=-1).values[:, -1:]
            weights = weights.masked_fill(weights < kth, 0.0)
        if self.top_p < 1:
            weights = weights * _nucleus_keep(weights, self.top_p)
        return weights

    def draw(self, weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One id per row from the truncated `weights` (which may be changed in place)."""
        if weights.device.type != "cpu" or (self.top_k == 0 and self.top_p >= 1):  # nothing to truncate on the CPU
            return draw(self.keep(weights), generator)
        w = weights.numpy()  # numpy views: a few microseconds a call, where each torch call costs more
        if len(w) == 1:
            return torch.from_numpy(np.array([self._row(w[0], generator)]))
        return torch.from_numpy(self._rows(w, generator))

    def draw_logits(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """`draw` from logits (free decoding): one row takes its top-k words before exponentiating them."""
        if logits.device.type != "cpu":
            return draw(self.keep((logits - logits.max(dim=-1, keepdim=True).values).exp()), generator)
        x = logits.numpy()
        if len(x) == 1:
            return torch.from_numpy(np.array([self._row(x[0], generator, logits=True)]))
        return torch.from_numpy(self._rows(np.exp(x - x.max(axis=1, keepdims=True)), generator))

    def _rows(self, w: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
        if 0 < self.top_k < w.shape[1]:
            w[w < np.partition(w, -self.top_k, axis=1)[:, -self.top_k, None]] = 0.0
        cdf = torch.from_numpy(w).cumsum(dim=1)  # torch's cumsum: a third of numpy's time on these rows
        total = cdf[:, -1].numpy()
        token = np.empty(len(w), dtype=np.int64)
        todo = np.arange(len(w))
        for _ in range(TRIES):
            u = torch.rand(len(todo), 1, generator=generator) * torch.from_numpy(total[todo, None])
            rows = cdf if len(todo) == len(w) else cdf[torch.from_numpy(todo)]
            drawn = torch.searchsorted(rows, u, right=True).numpy()[:, 0].clip(max=w.shape[1] - 1)  # inverse CDF
            chosen = w[todo, drawn]
            ok = chosen > (1 - self.top_p) * total[todo]
            check = np.flatnonzero(~ok)
            if len(check):  # the weight of the strictly heavier words
                heavier, c = w[todo[check]], chosen[check, None]
                ok[check] = np.where(heavier > c, heavier, 0.0).sum(axis=1) < self.top_p * total[todo[check]]
            token[todo[ok]] = drawn[ok]
            todo = todo[~ok]
            if not len(todo):
                return token
        token[todo] = draw(self.keep(torch.from_numpy(w[todo])), generator).numpy()
        return token

    def _row(self, x: np.ndarray, generator: torch.Generator | None, logits: bool = False) -> int:
        """`_rows` for one row of weights (or of logits: exponentiated here, after top-k)."""
        if 0 < self.top_k < len(x):  # draw among the words at least as heavy as the k-th (ties included) alone
            top = np.flatnonzero(x >= np.partition(x, -self.top_k)[-self.top_k])
            return int(top[self._nucleus_row(x[top], generator, logits)])
        return self._nucleus_row(x, generator, logits)

    def _nucleus_row(self, x: np.ndarray, generator: torch.Generator | None, logits: bool) -> int:
        w = x
        if logits:
            w = x - x.max()
            np.exp(w, out=w)
        # torch's cumsum runs a long row in a third of numpy's time; numpy's call costs less on a short one
        cdf = np.cumsum(w) if len(w) < 256 else torch.from_numpy(w).cumsum(dim=0).numpy()
        total = float(cdf[-1])
        for _ in range(TRIES):
            drawn = min(int(cdf.searchsorted(torch.rand(1, generator=generator).item() * total, "right")), len(w) - 1)
            chosen = w[drawn]
            if chosen > (1 - self.top_p) * total or np.dot(w, w > chosen) < self.top_p * total:
                return drawn
        return int(draw(Truncation(0, self.top_p).keep(torch.from_numpy(w[None])), generator))


class RepetitionPenalty:
    """The repetition penalty (CTRL, Keskar et al. 2019): the logits of the words a sample has used, except
    `exempt` ones (line breaks, spaces), divided by `penalty` when positive and multiplied by it when negative."""

    def __init__(self, penalty: float, exempt: list[int]) -> None:
        self.penalty, self.exempt = penalty, exempt

    def __call__(self, logits: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        penalised = seen.clone()
        penalised[:, self.exempt] = False
        scaled = torch.where(logits > 0, logits / self.penalty, logits * self.penalty)
        return torch.where(penalised, scaled, logits)

    def mark(self, seen: torch.Tensor, token: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """The words just written count as used (in the rows `rows` marks; all rows when None)."""
        index = torch.arange(len(token), device=token.device)
        if rows is None:
            seen[index, token] = True
        else:
            seen[index[rows], token[rows]] = True


class Sampler:
    """How the next word is picked under `opts`: greedy, or a draw at `opts.temperature` truncated by
    `opts.top_k` and `opts.top_p`."""

    def __init__(self, opts: DecodingOptions, generator: torch.Generator | None) -> None:
        self.greedy, self.temperature = opts.strategy == "greedy", opts.temperature
        self.truncation, self.generator = Truncation(opts.top_k, opts.top_p), generator

    def pick(self, logits: torch.Tensor) -> torch.Tensor:
        """Next token ids (rows,) from last-step logits (rows x vocab)."""
        if self.greedy:
            return logits.argmax(dim=-1)
        if self.temperature != 1:
            logits = logits / self.temperature
        return self.truncation.draw_logits(logits, self.generator)

    def pick_masked(self, logits: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`pick` among the `allowed` words only (every row must allow one), and the log of the probability
        mass, at the temperature, that the allowed words hold: one pass over the probabilities for both."""
        e = ((logits - logits.max(dim=-1, keepdim=True).values) * (1 / self.temperature)).exp_()
        kept = e * allowed
        kept_sum = kept.sum(dim=-1)
        if bool((kept_sum == 0).any()):  # allowed words whose probability underflowed: a uniform choice among them
            kept = torch.where((kept_sum == 0)[:, None], allowed.to(kept.dtype), kept)
        log_mass = kept_sum.clamp(min=1e-38).log_() - e.sum(dim=-1).log_()
        if self.greedy:
            return kept.argmax(dim=-1), log_mass
        return self.truncation.draw(kept, self.generator), log_mass


@torch.inference_mode()
def decode(
    net: RNNLM,
    prompt_ids: list[int],
    opts: DecodingOptions,
    *,
    newline_id: int,
    unk_id: int = 0,
    no_penalty_ids: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Continue `prompt_ids` with `opts.num_samples` samples; returns the new ids of each (prompt excluded).

    An empty prompt starts at the beginning of a line (the newline token is the context).
    `<unk>` is never produced; `no_penalty_ids` (line breaks, spaces) are exempt from the repetition penalty.
    """
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    batch = opts.num_samples
    context = torch.tensor(prompt_ids or [newline_id], device=device).expand(batch, -1)
    budget = opts.length if opts.length is not None else opts.max_length
    sampler = Sampler(opts, generator)
    penalty = RepetitionPenalty(opts.repetition_penalty, list(no_penalty_ids)) if opts.repetition_penalty > 1 else None
    seen = torch.zeros(batch, net.vocab_size, dtype=torch.bool, device=device)
    if penalty is not None:
        seen[:, prompt_ids] = True
    lines_done = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out = torch.empty(batch, budget, dtype=torch.long, device=device)
    n = 0
    logits, hidden = net(context)
    for n in range(1, budget + 1):
        step = logits[:, -1].float()
        step[:, unk_id] = -math.inf
        if penalty is not None:
            step = penalty(step, seen)
        token = sampler.pick(step)
        out[:, n - 1] = token
        if penalty is not None:
            penalty.mark(seen, token)
        if opts.lines is not None:
            lines_done += (token == newline_id) & ~finished
            finished |= lines_done >= opts.lines
            if bool(finished.all()):
                break
        if n < budget:
            logits, hidden = net(token[:, None], hidden)
    net.train(was_training)
    return [_cut(row, newline_id, opts.lines) for row in out[:, :n].tolist()]


def _cut(row: list[int], newline_id: int, lines: int | None) -> list[int]:
    """A sample cut after its own `lines`-th line break."""
    if lines is not None:
        breaks = [i for i, t in enumerate(row) if t == newline_id]
        if len(breaks) >= lines:
            return row[: breaks[lines - 1] + 1]
    return row
