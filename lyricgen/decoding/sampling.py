"""Sampling one token at a time: greedy, temperature, top-k, nucleus, repetition penalty, batched samples.

Decoding is incremental: the prompt runs through the network once to warm the hidden state, then
each new token costs one RNN step; `num_samples` samples are decoded together as one batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lyricgen.decoding.options import DecodingOptions
from lyricgen.rnnlm import RNNLM


def _nucleus_keep(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The smallest set of likeliest words whose probability reaches `top_p` (bool, same shape as probs)."""
    if probs.device.type == "cpu":
        return probs >= torch.from_numpy(_cpu_threshold(probs.numpy(), top_p))[:, None]
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_p.cumsum(dim=-1) - sorted_p < top_p  # words before it have not reached top_p yet
    return torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, keep_sorted)


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask all but the smallest set of likeliest words whose probability reaches `top_p`."""
    return logits.masked_fill(~_nucleus_keep(logits.softmax(dim=-1), top_p), -math.inf)


def _cpu_threshold(probs: np.ndarray, top_p: float | np.ndarray) -> np.ndarray:
    """Per row, the probability of the last word the nucleus keeps (words at least as likely are kept);
    `top_p` may be a column of per-row targets for rows that are not normalised.

    On the CPU, torch.sort of a few thousand floats costs about as much as the RNN step (~100 us) and
    numpy's argsort a quarter of that; numpy's sort of the values alone (no indices) takes ~6 us a row.
    """
    top = -np.sort(-probs, axis=-1)
    before = (np.cumsum(top, axis=-1) < top_p).sum(axis=-1)  # words whose running mass is below top_p
    return top[np.arange(len(top)), np.minimum(before, top.shape[-1] - 1)]


TRIES = 8  # rejection rounds before the exact masked draw (a row misses 8 times with p <= (1 - top_p) ** 8)


def _truncated_draw(logits: torch.Tensor, top_k: int, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Top-k, then nucleus, sampling without sorting the vocabulary (for the CPU).

    Top-k keeps the words at least as likely as the k-th (np.partition finds it in linear time). The
    nucleus is drawn by rejection: draw a word from the (top-k) distribution and keep it if the words
    strictly likelier than it hold less than `top_p` of the mass; draw again for the rows that missed,
    and after `TRIES` misses draw from the masked distribution itself. The kept draws follow the
    truncated distribution exactly (ties at its edges included, as `_masked_draw`); a draw is kept with
    probability >= top_p (~1.05 draws a step at 0.95), and one above (1 - top_p) of the mass is kept
    without a pass over the vocabulary (the likelier words hold at most the rest).

    `logits` are read as numpy views: a few microseconds a call, where each torch call costs more on
    rows this short; sorting the vocabulary was most of what sampling cost beyond greedy decoding.
    """
    x = logits.numpy()
    if len(x) == 1:  # one sample (generate.py's default): the same draws on scalars, half the array calls
        return torch.from_numpy(np.array([_truncated_draw_row(x[0], top_k, top_p, generator)]))
    weights = np.exp(x - x.max(axis=1, keepdims=True))  # unnormalised probabilities
    if 0 < top_k < x.shape[1]:
        weights[x < np.partition(x, -top_k, axis=1)[:, -top_k, None]] = 0.0
    cdf = torch.from_numpy(weights).cumsum(dim=1)  # torch's cumsum: a third of numpy's time on these rows
    total = cdf[:, -1].numpy()
    token = np.empty(len(x), dtype=np.int64)
    todo = np.arange(len(x))
    for _ in range(TRIES):
        u = torch.rand(len(todo), 1, generator=generator) * torch.from_numpy(total[todo, None])
        rows = cdf if len(todo) == len(x) else cdf[torch.from_numpy(todo)]
        draw = torch.searchsorted(rows, u, right=True).numpy()[:, 0].clip(max=x.shape[1] - 1)  # inverse CDF
        chosen = weights[todo, draw]
        ok = chosen > (1 - top_p) * total[todo]
        check = np.flatnonzero(~ok)
        if len(check):  # the mass of the strictly likelier words
            w, c = weights[todo[check]], chosen[check, None]
            ok[check] = np.where(w > c, w, 0.0).sum(axis=1) < top_p * total[todo[check]]
        token[todo[ok]] = draw[ok]
        todo = todo[~ok]
        if not len(todo):
            return torch.from_numpy(token)
    token[todo] = _masked_draw(torch.from_numpy(x[todo]), top_k, top_p, generator).numpy()
    return torch.from_numpy(token)


def _truncated_draw_row(x: np.ndarray, top_k: int, top_p: float, generator: torch.Generator | None) -> int:
    """`_truncated_draw` for one row of logits."""
    if 0 < top_k < len(x):  # draw among the words at least as likely as the k-th (ties included) alone
        top = np.flatnonzero(x >= np.partition(x, -top_k)[-top_k])
        return int(top[_truncated_draw_row(x[top], 0, top_p, generator)])
    weights = x - x.max()
    np.exp(weights, out=weights)
    # torch's cumsum runs a long row in a third of numpy's time; numpy's call costs less on a short one
    cdf = np.cumsum(weights) if len(x) < 256 else torch.from_numpy(weights).cumsum(dim=0).numpy()
    total = float(cdf[-1])
    for _ in range(TRIES):
        draw = min(int(cdf.searchsorted(torch.rand(1, generator=generator).item() * total, "right")), len(x) - 1)
        chosen = weights[draw]
        if chosen > (1 - top_p) * total or np.dot(weights, weights > chosen) < top_p * total:
            return draw
    return int(_masked_draw(torch.from_numpy(x[None]), top_k, top_p, generator))


def _masked_draw(logits: torch.Tensor, top_k: int, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Top-k, then nucleus, by masking the logits (rows x vocab): the reference distribution."""
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1:
        logits = _nucleus(logits, top_p)
    return _draw(logits.softmax(dim=-1), generator)


def pick(logits: torch.Tensor, opts: DecodingOptions, generator: torch.Generator | None) -> torch.Tensor:
    """Next token ids (batch,) from last-step logits (batch, vocab)."""
    if opts.strategy == "greedy":
        return logits.argmax(dim=-1)
    if opts.temperature != 1:
        logits = logits / opts.temperature
    if logits.device.type == "cpu":
        return _truncated_draw(logits, opts.top_k, opts.top_p, generator)
    return _masked_draw(logits, opts.top_k, opts.top_p, generator)


def _draw(weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One id per row, with probability proportional to `weights` (rows x vocab, >= 0, not normalised).

    Inverse-CDF sampling: the same distribution as torch.multinomial, about ten times faster on the CPU
    for one draw from a vocabulary of thousands (a cumsum and a binary search).
    """
    cdf = weights.cumsum(dim=-1)
    u = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.size(-1) - 1)


def penalize(logits: torch.Tensor, seen: torch.Tensor, penalty: float, exempt: list[int]) -> torch.Tensor:
    """The repetition penalty (CTRL, Keskar et al. 2019): logits of the `seen` words, except `exempt` ones
    (line breaks, spaces), divided by `penalty` when positive and multiplied by it when negative."""
    penalised = seen.clone()
    penalised[:, exempt] = False
    scaled = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(penalised, scaled, logits)


def pick_masked(
    logits: torch.Tensor, allowed: torch.Tensor, opts: DecodingOptions, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`pick` among the `allowed` words only (every row must allow one), and the log of the probability
    mass, at `opts.temperature`, that the allowed words hold: one pass over the probabilities for both."""
    e = ((logits - logits.max(dim=-1, keepdim=True).values) * (1 / opts.temperature)).exp_()
    kept = e * allowed
    kept_sum = kept.sum(dim=-1)
    if bool((kept_sum == 0).any()):  # allowed words whose probability underflowed: a uniform choice among them
        kept = torch.where((kept_sum == 0)[:, None], allowed.to(kept.dtype), kept)
    log_mass = kept_sum.clamp(min=1e-38).log_() - e.sum(dim=-1).log_()
    if opts.strategy == "greedy":
        return kept.argmax(dim=-1), log_mass
    if opts.top_k > 0:
        kth = torch.topk(kept, min(opts.top_k, kept.size(-1)), dim=-1).values[:, -1:]
        kept.masked_fill_(kept < kth, 0.0)
    if opts.top_p < 1:
        if kept.device.type == "cpu":  # the nucleus of the unnormalised row: its mass times top_p
            tau = _cpu_threshold(kept.numpy(), opts.top_p * kept.sum(dim=-1, keepdim=True).numpy())
            kept.masked_fill_(kept < torch.from_numpy(tau)[:, None], 0.0)
        else:
            kept = kept * _nucleus_keep(kept / kept.sum(dim=-1, keepdim=True), opts.top_p)
    return _draw(kept, generator), log_mass


class RepetitionPenalty:
    """The repetition penalty (CTRL, Keskar et al. 2019): the logits of the words a sample has used, except
    `exempt` ones (line breaks, spaces), divided by `penalty` when positive and multiplied by it when negative."""

    def __init__(self, penalty: float, exempt: list[int]) -> None:
        self.penalty, self.exempt = penalty, exempt

    def __call__(self, logits: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        return penalize(logits, seen, self.penalty, self.exempt)

    def mark(self, seen: torch.Tensor, token: torch.Tensor, rows: torch.Tensor) -> None:
        """The words just written count as used (in the rows marked in `rows`)."""
        seen[torch.arange(len(token), device=token.device)[rows], token[rows]] = True


class Sampler:
    """How the next word is picked under `opts`: greedy, or a draw at `opts.temperature`, truncated."""

    def __init__(self, opts: DecodingOptions, generator: torch.Generator | None) -> None:
        self.opts, self.generator = opts, generator

    def pick(self, logits: torch.Tensor) -> torch.Tensor:
        return pick(logits, self.opts, self.generator)

    def pick_masked(self, logits: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pick_masked(logits, allowed, self.opts, self.generator)


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
    seen = torch.zeros(batch, net.vocab_size, dtype=torch.bool, device=device)
    exempt = list(no_penalty_ids)
    if opts.repetition_penalty > 1:
        seen[:, prompt_ids] = True
    lines_done = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out = torch.empty(batch, budget, dtype=torch.long, device=device)
    n = 0
    logits, hidden = net(context)
    for n in range(1, budget + 1):
        step = logits[:, -1].float()
        step[:, unk_id] = -math.inf
        if opts.repetition_penalty > 1:
            step = penalize(step, seen, opts.repetition_penalty, exempt)
        token = pick(step, opts, generator)
        out[:, n - 1] = token
        if opts.repetition_penalty > 1:
            seen[torch.arange(batch, device=device), token] = True
        if opts.lines is not None:
            lines_done += (token == newline_id) & ~finished
            finished |= lines_done >= opts.lines
            if bool(finished.all()):
                break
        if n < budget:
            logits, hidden = net(token[:, None], hidden)
    net.train(was_training)
    results = []
    for row in out[:, :n].tolist():
        if opts.lines is not None:  # cut each sample after its own N-th line break
            breaks = [i for i, t in enumerate(row) if t == newline_id]
            if len(breaks) >= opts.lines:
                row = row[: breaks[opts.lines - 1] + 1]
        results.append(row)
    return results
