"""The start of one sample's line in form decoding, before the line branches into `best_of` candidates:
until the mask takes away more than `1 - BRANCH_MASS` of the probability, the constraints do not bite, so
this start is drawn once, with the state in Python numbers rather than tensors of rows. The tensor loop
of `lyricgen.decoding.form.FormDecoder` takes over where the mask bites, with the same draws."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from lyricgen.decoding.plan import LineSpec
from lyricgen.decoding.sampling import pick_masked
from lyricgen.rnnlm import select_hidden

if TYPE_CHECKING:
    from lyricgen.decoding.form import FormDecoder

BRANCH_MASS = 0.8  # a line branches into best_of candidates where the mask first leaves less than this
LOG_BRANCH_MASS = math.log(BRANCH_MASS)


def unbranched_start(
    dec: FormDecoder, spec: LineSpec, st: dict, table: torch.Tensor, h, final_h, words: list[int], end: int
):
    """The start of one sample's line, before it branches, with its state in Python numbers: the same
    draws as the tensor loop (which takes over where the mask bites), at a fraction of the overhead.

    Returns the next position, whether the line must branch there, and the hidden states.
    """
    t, opts = dec.t, dec.opts
    chars, classes = t.chars_list, t.cls_list
    u, last_cls, last_word = int(st["u"][0]), int(st["last_cls"][0]), int(st["last_word"][0])
    prev_space, m = False, int(st["m_row"][0])
    cls_ok, no_end = st["cls_ok"][0], st["no_end"]
    ctx = [w for w in st["ctx"][0].tolist() if w >= 0]
    logits, tokens = st["logits"], []
    log_mass = logp = torch.zeros(1, device=logits.device)  # float32 sums, as in the tensor loop
    branch_now = finished = dead = False
    for _ in range(st["tokens"].size(1)):
        row = table[0, min(u, spec.hi)].clone()
        free = not prev_space and u >= 1
        if t.space >= 0:
            row[t.space] = free and spec.hi - u >= m
        ends = free and u >= spec.lo and bool(cls_ok[last_cls])
        if ends and no_end is not None and last_word >= 0:
            ends = not bool(no_end[0, last_word])
        row[end] = ends
        if dec.n and len(ctx) >= dec.n - 1:
            blocked = dec.ngrams.followers(ctx[len(ctx) - (dec.n - 1) :])
            if len(blocked):
                row[torch.from_numpy(np.asarray(blocked)).to(row.device)] = False
        if not bool(row.any()):
            dead = True
            break
        token, mass = pick_masked(logits, row[None], opts, dec.generator)
        if float(mass[0]) < LOG_BRANCH_MASS:
            branch_now = True
            break
        tok = int(token[0])
        log_mass = log_mass + mass
        logp = logp + logits.log_softmax(dim=1)[:, tok]
        tokens.append(tok)
        if tok != end and tok != t.space:
            u, last_cls, last_word = u + chars[tok], classes[tok], tok
            ctx.append(tok)
        prev_space = tok == t.space
        out, h = dec.net(token[:, None], h)
        logits = out[:, 0].float()
        if tok == end:
            finished = True
            final_h = select_hidden(h, torch.zeros(1, dtype=torch.long, device=logits.device))
            st["final_logits"][0] = logits[0]
            break
    n = len(tokens)
    st["tokens"][0, :n] = torch.tensor(tokens, dtype=torch.long)
    st["u"][0], st["last_cls"][0], st["last_word"][0] = u, last_cls, last_word
    st["prev_space"][0], st["ntok"][0] = prev_space, n
    st["log_mass"][0], st["logp"][0] = log_mass[0], logp[0]
    st["finished"][0], st["dead"][0] = finished, dead
    st["logits"] = logits
    if dec.n:
        tail = ctx[len(ctx) - min(len(ctx), st["ctx"].size(1)) :]
        st["ctx"][0] = -1
        if tail:
            st["ctx"][0, st["ctx"].size(1) - len(tail) :] = torch.tensor(tail)
    return n, branch_now, h, final_h
