"""The training step: the project's LightningModule trained by Lightning's Trainer against a plain PyTorch
loop on the same batches, in alternating rounds; and the FLOP/s that reaches.

Both training loops run in this process, on the same batches of the real corpus, with the same
model sizes, optimiser and gradient clipping, after the same warm-up, over the same number of steps,
in 20 short alternating rounds (plain, Lightning; then Lightning, plain; ...: 3 + 15 steps each, so that
the two sides of a round are seconds apart), with the allocator keeping freed memory for both. Everything
runs on one torch thread (`--threads`, pinned so that the cores' other work does not land inside the
steps; 0: torch's choice). Lightning / plain is the ratio of the two loops' median step times over all
rounds (a busy moment of the machine slows a few steps, not the median), with each round's own ratio
beside it; sampling / greedy is the median of 40 rounds' ratios.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import Row, spread
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.model import OPTIMIZERS, LyricsLM


class PlainRNNLM(nn.Module):
    """The baseline, written here on purpose: embedding -> cell -> linear, nothing from lyricgen."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, cell: str, dropout: float, emb_dropout: float):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell](emb, hidden, layers, batch_first=True)
        self.drop_emb, self.drop_out = nn.Dropout(emb_dropout), nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x):
        h, _ = self.rnn(self.drop_emb(self.emb(x)))
        return self.out(self.drop_out(h))


def plain_like(model: LyricsLM) -> tuple[PlainRNNLM, torch.optim.Optimizer]:
    """A fresh baseline with `model`'s sizes, dropout and optimiser settings (lr, weight decay). What lyricgen
    adds beyond embedding -> cell -> linear (tied weights, the adaptive softmax, locked or word dropout) is
    not copied: with those, the two loops no longer train the same network."""
    h = model.hparams
    net = PlainRNNLM(h.vocab_size, h.emb_dim, h.hidden_size, h.num_layers, h.cell, h.dropout, h.emb_dropout)
    opt = OPTIMIZERS[h.optimizer](net.parameters(), lr=h.lr, weight_decay=h.weight_decay)
    return net, opt


def batches(datamodule: LyricsDataModule, n: int) -> list:
    """`n` training batches, cycling over epochs (the same ones for both loops)."""
    return list(itertools.islice(itertools.cycle(datamodule.train_dataloader()), n))


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


@contextlib.contextmanager
def held_memory():
    """Inside: glibc's malloc keeps the memory that tensors free (no mmap for big blocks, no trimming of the
    heap) instead of handing it back to the OS, which the next step then faults in again, page by page. With
    glibc's defaults the plain loop's rounds took about 390,000 minor page faults each (80 steps of 16 x 100
    tokens, a vocabulary of 3,147), Lightning's none, and the plain loop's step time wandered from round to
    round; PyTorch's CPU tuning guide suggests jemalloc or tcmalloc for the same reason. Yields whether the
    setting took (glibc only). glibc's default values are set again after; what the heap holds by then stays
    with the process (the benchmark's own)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):  # not glibc: the platform's allocator as it is
        yield False
        return
    held = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    try:
        yield held
    finally:
        mallopt(M_MMAP_MAX, 65536)  # glibc's DEFAULT_MMAP_MAX and DEFAULT_TRIM_THRESHOLD
        mallopt(M_TRIM_THRESHOLD, 128 * 1024)


def time_plain(
    net: nn.Module, opt: torch.optim.Optimizer, data: Sequence, warmup: int, clip: float | None
) -> tuple[list[float], list[float]]:
    """Train `net` on `data` in a plain loop: the seconds of each step after the first `warmup` (from one
    step's start to the next's, as `StepTimer` times Lightning's), and every step's loss."""
    if not 0 <= warmup < len(data):
        raise ValueError(f"warmup {warmup} must leave at least one of the {len(data)} batches to time")
    losses, marks = [], []
    net.train()
    for i, (x, y) in enumerate(data):
        if i >= warmup:
            marks.append(time.perf_counter())
        logits = net(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        losses.append(loss.detach())
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:])], [float(x) for x in losses]


class StepTimer(L.Callback):
    """The wall time of each step from step `warmup` on: from one step's start to the next's (the last to the
    end of training), so that Lightning's work between steps (hooks, logging) is in it."""

    def __init__(self, warmup: int):
        self.warmup, self.marks = warmup, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.warmup:
            self.marks.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module):
        self.marks.append(time.perf_counter())

    @property
    def steps(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def time_lightning(
    model: LyricsLM, data: Sequence, warmup: int, log_dir: str, clip: float | None, log_every_n_steps: int
) -> list[float]:
    """Train `model` on `data` with Lightning's Trainer on the CPU, the project's module with its TensorBoard
    logging (no progress bar, no checkpoints): the seconds of each step after the first `warmup`."""
    if not 0 <= warmup < len(data):
        raise ValueError(f"warmup {warmup} must leave at least one of the {len(data)} batches to time")
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=len(data),
        enable_checkpointing=False,
        logger=L.pytorch.loggers.TensorBoardLogger(log_dir),
        log_every_n_steps=log_every_n_steps,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=clip,
        callbacks=[timer],
    )
    loader = torch.utils.data.DataLoader(data, batch_size=None)  # the same batches, in the same order
    trainer.fit(model, train_dataloaders=loader)
    return timer.steps


@dataclass
class TrainingRounds:
    """The step times of alternating rounds of the two training loops, over the same `tokens` timed tokens a
    round. A step's time is the code's plus whatever else the machine did then; the median step of all rounds
    keeps the first and drops most of the second (a busy moment slows a few steps, not the median), so the
    ratio of the two loops' median steps stands for the code (`ratio`), and each round's own ratio shows how
    much a single round would have wandered (`ratios`)."""

    tokens: int
    plain_steps: list[list[float]] = field(default_factory=list)
    lightning_steps: list[list[float]] = field(default_factory=list)

    @property
    def plain_s(self) -> list[float]:
        return [sum(r) for r in self.plain_steps]

    @property
    def lightning_s(self) -> list[float]:
        return [sum(r) for r in self.lightning_steps]

    @property
    def plain_tps(self) -> list[float]:
        return [self.tokens / s for s in self.plain_s]

    @property
    def lightning_tps(self) -> list[float]:
        return [self.tokens / s for s in self.lightning_s]

    @property
    def ratio(self) -> float:
        """Lightning's speed over the plain loop's: the plain loop's median step over Lightning's, all rounds."""
        plain = statistics.median(t for r in self.plain_steps for t in r)
        return plain / statistics.median(t for r in self.lightning_steps for t in r)

    @property
    def ratios(self) -> list[float]:
        """The same ratio within each round (its median steps)."""
        return [statistics.median(p) / statistics.median(q) for p, q in zip(self.plain_steps, self.lightning_steps)]


def time_training(
    make_model: Callable[[], LyricsLM],
    data: Sequence,
    warmup: int,
    rounds: int,
    clip: float | None,
    log_every_n_steps: int,
    log_dir: str,
) -> tuple[TrainingRounds, LyricsLM]:
    """`rounds` rounds of a fresh plain baseline and a fresh `make_model()` trained by Lightning on the same
    batches, plain first in even rounds and Lightning first in odd ones; and the last model Lightning trained."""
    tokens = sum(int((y != -100).sum()) for _, y in data[warmup:])
    result = TrainingRounds(tokens)
    for r in range(rounds):
        sides = ["plain", "lightning"] if r % 2 == 0 else ["lightning", "plain"]
        for side in sides:
            model = make_model()
            gc.collect()  # not inside the timed steps
            if side == "plain":
                result.plain_steps.append(time_plain(*plain_like(model), data, warmup, clip)[0])
            else:
                result.lightning_steps.append(time_lightning(model, data, warmup, log_dir, clip, log_every_n_steps))
                trained = model
    return result, trained


def training_rows(result: TrainingRounds) -> list[Row]:
    rounds = len(result.ratios)
    plain, light = result.plain_tps, result.lightning_tps
    _, low, high = spread(result.ratios)
    return [
        (f"training, plain PyTorch loop (best of {rounds})", f"{max(plain):,.0f} tokens/s"),
        (
            f"training, Lightning: lyricgen module + TensorBoard logging (best of {rounds})",
            f"{max(light):,.0f} tokens/s",
        ),
        (
            "training tokens/s, all rounds (plain, Lightning)",
            f"rounds {min(plain):,.0f}-{max(plain):,.0f} and {min(light):,.0f}-{max(light):,.0f}",
        ),
        (
            "ratio Lightning / plain",
            f"{result.ratio:.3f} (median steps of {rounds} rounds side by side; rounds {low:.3f}-{high:.3f})",
        ),
    ]


def flops_per_token(cell: str, emb_dim: int, hidden_size: int, num_layers: int, vocab_size: int) -> float:
    """Training FLOPs per token: 3x the forward matmuls (input, recurrent, output projections)."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    rnn = sum(2 * gates * ((emb_dim if i == 0 else hidden_size) + hidden_size) * hidden_size for i in range(num_layers))
    return 3 * (rnn + 2 * hidden_size * vocab_size)


def matmul_peak(n: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of `torch.mm` of two n x n fp32 matrices (after one warm-up product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeat):
        torch.mm(a, b)
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def flops_rows(model: LyricsLM, lightning_tps: float, n: int = 2048) -> list[Row]:
    h = model.hparams
    peak = matmul_peak(n)
    achieved = lightning_tps * flops_per_token(h.cell, h.emb_dim, h.hidden_size, h.num_layers, h.vocab_size)
    return [
        (f"matmul peak (torch.mm {n}x{n}, fp32)", f"{peak / 1e9:,.1f} GFLOP/s"),
        ("training FLOP/s (Lightning)", f"{achieved / 1e9:,.2f} GFLOP/s = {100 * achieved / peak:.1f}% of peak"),
    ]
