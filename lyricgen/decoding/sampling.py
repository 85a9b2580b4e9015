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


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask all but the smallest set of likeliest words whose probability reaches `top_p`."""
    probs = logits.softmax(dim=-1)
    if probs.device.type == "cpu":
        # On the CPU, torch.sort of a few thousand floats costs about as much as the RNN step
        # (~100 us); numpy's argsort takes a quarter of that.
        order = torch.from_numpy(np.argsort(-probs.numpy(), axis=-1))
        sorted_p = probs.gather(-1, order)
    else:
        sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_p.cumsum(dim=-1) - sorted_p < top_p  # words before it have not reached top_p yet
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, -math.inf)


def pick(logits: torch.Tensor, opts: DecodingOptions, generator: torch.Generator | None) -> torch.Tensor:
    """Next token ids (batch,) from last-step logits (batch, vocab)."""
    if opts.strategy == "greedy":
        return logits.argmax(dim=-1)
    logits = logits / opts.temperature
    if opts.top_k > 0:
        kth = torch.topk(logits, min(opts.top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if opts.top_p < 1:
        logits = _nucleus(logits, opts.top_p)
    # Inverse-CDF sampling: the same distribution as torch.multinomial, about ten times faster on
    # the CPU for one draw from a vocabulary of thousands (a cumsum and a binary search).
    cdf = logits.softmax(dim=-1).cumsum(dim=-1)
    u = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.size(-1) - 1)


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
    seen = torch.zeros(batch, net.head.out_features, dtype=torch.bool, device=device)
    if opts.repetition_penalty > 1:
        seen[:, prompt_ids] = True
    exempt = torch.tensor(no_penalty_ids, dtype=torch.long, device=device)
    lines_done = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out = torch.empty(batch, budget, dtype=torch.long, device=device)
    n = 0
    logits, hidden = net(context)
    for n in range(1, budget + 1):
        step = logits[:, -1].float()
        step[:, unk_id] = -math.inf
        if opts.repetition_penalty > 1:
            penalised = seen.clone()
            penalised[:, exempt] = False
            scaled = torch.where(step > 0, step / opts.repetition_penalty, step * opts.repetition_penalty)
            step = torch.where(penalised, scaled, step)
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
