"""The continuous cache (Grave, Joulin & Usunier 2017, "Improving neural language models with a
continuous cache"; the pointer of AWD-LSTM's `pointer.py`), as an evaluation of a trained model.

Lyrics repeat themselves: a chorus comes back two or three times in a song. The cache remembers the
last `window` hidden states of the text being scored, each with the word that followed it, and turns the
similarity of the current state to them into a distribution over those words:

    p_cache(w | h_t) ∝ Σ_{i in [t - window, t), x_{i+1} = w} exp(theta · h_t · h_i)
    p(w) = (1 - lam) · p_model(w) + lam · p_cache(w)

It has no parameters to train: `window`, `theta` and `lam` are chosen on the validation split, then the
test split is scored once with them. The text is read as one continuous stream (the hidden state carried
from chunk to chunk, as word_language_model and AWD-LSTM evaluate), which alone lowers perplexity a little
since no chunk starts from a zero state; `lam = 0` is that figure.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lyricgen.data.encoding import SplitChars
from lyricgen.rnnlm import RNNLM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheSettings:
    window: int
    theta: float
    lam: float


@dataclass
class StreamScores:
    """One split read as a continuous stream: p_model of each target and the state that predicted it."""

    target_prob: torch.Tensor  # (N,) p_model(x_{t+1} | x_<=t)
    hidden: torch.Tensor  # (N, H) last layer's output at t
    targets: torch.Tensor  # (N,) x_{t+1}


@torch.no_grad()
def read_stream(net: RNNLM, ids: torch.Tensor, chunk: int = 256, progress: str | None = None) -> StreamScores:
    """Run `net` over `ids` in order, carrying the hidden state across chunks of `chunk` tokens; with
    `progress`, a progress bar of that name (in tokens)."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    hidden, probs, outs = None, [], []
    bar = tqdm(total=max(0, ids.numel() - 1), desc=progress, unit="tok", leave=False, disable=progress is None)
    try:
        for start in range(0, ids.numel() - 1, chunk):
            x = ids[start : min(start + chunk, ids.numel() - 1)].to(device)[None]
            y = ids[start + 1 : start + 1 + x.size(1)].to(device)
            logits, hidden, (raw, _) = net(x, hidden, return_outputs=True)
            probs.append(F.log_softmax(logits[0].float(), -1).gather(1, y[:, None])[:, 0].exp().cpu())
            outs.append(raw[0].float().cpu())
            bar.update(x.size(1))
    finally:
        bar.close()
        net.train(was_training)
    return StreamScores(torch.cat(probs), torch.cat(outs), ids[1:].clone())


def cache_probs(scores: StreamScores, window: int, theta: float, block: int = 512) -> torch.Tensor:
    """p_cache(x_{t+1}) for every t (0 where the word is not in the window; 0 at t = 0), in blocks of rows
    so that memory grows with block × (block + window), not with the square of the split."""
    h, y = scores.hidden, scores.targets
    n = y.numel()
    out = torch.zeros(n)
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        c0 = max(0, r0 - window)
        rows, cols = torch.arange(r0, r1)[:, None], torch.arange(c0, r1)[None, :]
        visible = (cols < rows) & (cols >= rows - window)  # the `window` states before t
        logits = (theta * (h[r0:r1] @ h[c0:r1].T)).masked_fill(~visible, float("-inf"))
        weights = torch.softmax(logits, dim=1).nan_to_num(0.0)  # row t = 0 sees nothing: all zeros
        same = y[r0:r1, None] == y[None, c0:r1]  # entry i stores the word x_{i+1} = y[i]
        out[r0:r1] = (weights * same).sum(1)
    return out


def mixed_nll(scores: StreamScores, p_cache: torch.Tensor, lam: float) -> float:
    """Mean negative log-likelihood (nats per token) of the interpolated model."""
    p = (1 - lam) * scores.target_prob + lam * p_cache
    return float(-p.clamp_min(1e-30).log().mean())


def tune(scores: StreamScores, windows, thetas, lams, progress: bool = False) -> tuple[CacheSettings, float]:
    """The settings with the lowest mean NLL on `scores` (the validation split), and that NLL.
    `lam = 0` is always a candidate, so the cache is never worse on the split it was tuned on. With
    `progress`, a progress bar over the (window, theta) pairs."""
    best = (CacheSettings(0, 0.0, 0.0), mixed_nll(scores, torch.zeros_like(scores.target_prob), 0.0))
    grid = itertools.product(windows, thetas)
    total = len(windows) * len(thetas)
    for window, theta in tqdm(grid, total=total, desc="Cache grid (val)", leave=False, disable=not progress):
        p_cache = cache_probs(scores, int(window), float(theta))
        for lam in lams:
            nll = mixed_nll(scores, p_cache, float(lam))
            if nll < best[1]:
                best = (CacheSettings(int(window), float(theta), float(lam)), nll)
    return best


def cache_evaluation(
    net: RNNLM,
    val_ids: torch.Tensor,
    test_ids: torch.Tensor | None,
    chars: dict[str, SplitChars],
    windows,
    thetas,
    lams,
    max_tokens: int | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Tune the cache on `val_ids`, score `test_ids` once with it. Returns `val/…_cache`, `test/…_cache`
    (loss, ppl, bpc), the continuous-stream figures without the cache (`…_stream`) and the settings.
    `max_tokens`: each split is read up to its first `max_tokens` tokens (a big corpus's grid stays bounded;
    the figures are then of that part, said in the log). `progress`: a progress bar for each stream and the
    grid."""
    if max_tokens is not None:
        for name, ids in (("val", val_ids), ("test", test_ids)):
            if ids is not None and ids.numel() > max_tokens:
                log.info(
                    "continuous cache and stream scoring: the first %d of %s's %d tokens (cache.max_tokens)",
                    max_tokens,
                    name,
                    ids.numel(),
                )
        val_ids = val_ids[:max_tokens]
        test_ids = test_ids[:max_tokens] if test_ids is not None else None
    val = read_stream(net, val_ids, progress="Stream (val)" if progress else None)
    settings, val_nll = tune(val, windows, thetas, lams, progress)
    result = {"cache/window": settings.window, "cache/theta": settings.theta, "cache/lambda": settings.lam}
    splits = [("val", val, val_nll)]
    if test_ids is not None and test_ids.numel() > 1:
        test = read_stream(net, test_ids, progress="Stream (test)" if progress else None)
        p_cache = (
            cache_probs(test, settings.window, settings.theta) if settings.lam else torch.zeros(test.targets.numel())
        )
        splits.append(("test", test, mixed_nll(test, p_cache, settings.lam)))
    for stage, scores, nll in splits:
        stream_nll = mixed_nll(scores, torch.zeros_like(scores.target_prob), 0.0)
        for suffix, value in (("stream", stream_nll), ("cache", nll)):
            result[f"{stage}/loss_{suffix}"] = value
            result[f"{stage}/ppl_{suffix}"] = math.exp(value)
            if stage in chars:
                result[f"{stage}/bpc_{suffix}"] = chars[stage].bpc(value)
    return result
