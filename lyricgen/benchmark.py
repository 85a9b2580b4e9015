"""The measures of `scripts/benchmark.py`: the Lightning training step against a plain PyTorch loop, generation,
data set-up, FLOP/s, form decoding and the web page's latency, each as rows of a Markdown table.

Everything takes plain arguments (a function that builds the data module or the model, numbers, paths);
the script composes the Hydra config and calls `benchmark`. Two measures run in a fresh Python process, as a
user's run would: `python -m lyricgen.benchmark plain PATH` (a plain jieba loop) and
`python -m lyricgen.benchmark setup PATH CACHE_DIR` (the data module's set-up and its peak memory), each
printing one JSON line (`in_child`).

The ratios (Lightning / plain, sampling / greedy) compare the two sides round by round: in each round they run
one right after the other on the same batches (or the same prompt and seed), in the order A B, then B A in the
next round, so a slow minute of a shared machine slows both sides of the rounds it falls in. Lightning / plain
is the ratio of the two loops' median steps over all rounds, sampling / greedy the median of per-round ratios;
the rows give the spread of the rounds beside them. The training rounds run with freed memory kept by the
allocator (`held_memory`), for both loops alike, and everything on one torch thread unless told otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import datetime
import gc
import inspect
import itertools
import json
import logging
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lyricgen.data.corpus import usable_cpus
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.decoding import DecodingOptions
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator
from lyricgen.model import OPTIMIZERS, LyricsLM

Row = tuple[str, str]


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


FORM_TIMINGS = 20  # timings of form decoding and of each page request, with a checkpoint
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


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, smallest and largest of `values`."""
    return statistics.median(values), min(values), max(values)


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


# The decoding settings timed, each for one sample of `gen_tokens` words (100 samples: a twentieth of them).
GENERATION_KINDS = [
    ("1 sample, generate.py defaults: sample, temperature 1, top_p 0.95", DecodingOptions(top_p=0.95)),
    ("1 sample, greedy", DecodingOptions(strategy="greedy")),
    ("1 sample, top_k 40", DecodingOptions(top_k=40)),
    ("100 samples at once (num_samples=100), top_p 0.95", DecodingOptions(top_p=0.95, num_samples=100)),
]


def time_generation(
    gen: LyricsGenerator, kinds: Sequence[tuple[str, DecodingOptions]], rounds: int, start_word: str = "星星"
) -> list[list[float]]:
    """Tokens/s of each decoding setting in `kinds`, round by round (`[round][kind]`): in each round every
    setting decodes once from `start_word` with seed 0, in the order given, then reversed in the next."""
    gen.generate(start_word, seed=0, opts=DecodingOptions(length=50))  # warm-up
    speeds = []
    for r in range(rounds):
        order = list(range(len(kinds))) if r % 2 == 0 else list(range(len(kinds)))[::-1]
        speed = [0.0] * len(kinds)
        for i in order:
            opts = kinds[i][1]
            start = time.perf_counter()
            gen.generate(start_word, seed=0, opts=opts)
            speed[i] = opts.num_samples * opts.length / (time.perf_counter() - start)
        speeds.append(speed)
    return speeds


def generation_rows(gen: LyricsGenerator, gen_tokens: int, rounds: int) -> list[Row]:
    """Tokens/s of each of `GENERATION_KINDS` (best round) and sampling/greedy, top_k/greedy (median of the
    per-round ratios, with their spread)."""
    kinds = []
    for label, opts in GENERATION_KINDS:
        length = gen_tokens if opts.num_samples == 1 else max(1, gen_tokens // 20)
        kinds.append((label, dataclasses.replace(opts, length=length)))
    speeds = time_generation(gen, kinds, rounds)
    rows = [
        (f"generation, {label}", f"{max(s[i] for s in speeds):,.0f} tokens/s") for i, (label, _) in enumerate(kinds)
    ]
    greedy = 1
    for i, label in (
        (0, "sampling/greedy (tokens/s of top_p 0.95 over greedy, 1 sample)"),
        (2, "top_k/greedy (tokens/s of top_k 40 over greedy, 1 sample)"),
    ):
        ratio, low, high = spread([s[i] / s[greedy] for s in speeds])
        rows.append((label, f"{ratio:.2f} (median of {rounds} rounds side by side; {low:.2f}-{high:.2f})"))
    return rows


def form_rows(gen: LyricsGenerator, timings: int) -> tuple[list[Row], DecodingOptions, DecodingOptions]:
    """8 lines with rhyme=AABB line_chars=7 against 8 free lines, the same settings, best of `timings` each;
    and the two settings (for `page_latency`)."""
    free = DecodingOptions(lines=8, length=None, temperature=0.8, top_p=0.95)
    form = DecodingOptions(lines=8, length=None, temperature=0.8, top_p=0.95, rhyme="AABB", line_chars=7)
    gen.generate("", seed=0, opts=form)  # warm-up: pypinyin and the per-word tables
    times = {}
    for label, opts in (("free", free), ("form", form)):
        spans = []
        for r in range(timings):
            start = time.perf_counter()
            gen.generate("", seed=r, opts=opts)
            spans.append(time.perf_counter() - start)
        times[label] = min(spans)
    rows = [
        ("generation, 8 free lines (best of rounds)", f"{1000 * times['free']:.1f} ms"),
        (
            f"generation, 8 lines rhyme=AABB line_chars=7, best_of {form.best_of} (best of rounds)",
            f"{1000 * times['form']:.1f} ms",
        ),
        ("ratio form / free", f"{times['form'] / times['free']:.2f}"),
    ]
    return rows, free, form


def page_latency(ckpt: str, free: DecodingOptions, form: DecodingOptions, repeats: int) -> list[Row]:
    """A request for 8 lines to the web page (scripts/app.py's page, served here on a free local port) through
    gradio_client, against decoding the same lines with the model loaded and the page function called directly."""
    try:
        import httpx
        from gradio_client import Client
    except ImportError:
        return [("web page request", 'not measured: pip install -e ".[app]"')]
    from lyricgen.app import LyricsPage, Models, start

    models = Models(device="cpu")
    models.load(ckpt)
    gen, page = models.current.generator, LyricsPage(models)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = start(page, port=port)
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    http = httpx.Client(timeout=60)
    page_defaults = {k: v.default for k, v in inspect.signature(page.generate).parameters.items()}
    rows = []
    try:
        for label, opts in (("8 free lines", free), ("8 lines rhyme=AABB line_chars=7", form)):
            asked = dict(
                start_word="",
                lines=8,
                temperature=opts.temperature,
                top_p=opts.top_p,
                rhyme=opts.rhyme or "",
                line_chars=str(opts.line_chars or ""),
            )
            calls = {  # the same lyrics four ways: the same options and seeds
                "decoding": lambda r, opts=opts: gen.generate("", seed=r, opts=opts),
                "page function (decoding, annotation, measures)": lambda r, asked=asked: page.generate(**asked, seed=r),
                "request through gradio_client": lambda r, asked=asked: client.predict(
                    **asked, seed=str(r), api_name="/generate"
                ),
                # the same request without gradio_client, which polls for its answer every 50 ms
                "request over HTTP (gradio_api/call/generate, httpx)": lambda r, asked=asked: http_call(
                    http, url, "generate", [{**page_defaults, **asked, "seed": str(r)}[k] for k in page_defaults]
                ),
            }
            spans = {name: [] for name in calls}
            for r in range(repeats + 1):  # the first round warms up
                for name, call in calls.items():
                    begin = time.perf_counter()
                    call(r)
                    if r:
                        spans[name].append(1000 * (time.perf_counter() - begin))
            for name, ms in spans.items():
                rows.append(
                    (
                        f"web page, {label}: {name} (best / median of {repeats})",
                        f"{min(ms):.1f} / {statistics.median(ms):.1f} ms",
                    )
                )
            decoding = statistics.median(spans["decoding"])
            client_over, http_over = (
                statistics.median(ms) - decoding for name, ms in spans.items() if name.startswith("request")
            )
            rows.append(
                (
                    f"web page, {label}: request minus decoding (medians; gradio_client, HTTP)",
                    f"{client_over:.1f} ms, {http_over:.1f} ms",
                )
            )
    finally:
        http.close()
        demo.close()
    return rows


def http_call(http, url: str, api_name: str, data: list):
    """One call of a Gradio endpoint over its HTTP API: POST the inputs, read the answer's event stream."""
    event_id = http.post(f"{url}gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    with http.stream("GET", f"{url}gradio_api/call/{api_name}/{event_id}") as answer:
        text = "".join(answer.iter_text())
    if "event: complete" not in text:
        raise RuntimeError(f"the page answered {text[:300]!r}")
    return text


def setup_rows(make_datamodule: Callable[[str], LyricsDataModule]) -> tuple[list[Row], LyricsDataModule]:
    """The data module's set-up from an empty cache (cold: the tokeniser runs) and again (warm: a cache hit),
    and the warm data module."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):
            dm = make_datamodule(cache)
            start = time.perf_counter()
            dm.prepare_data()
            dm.setup("fit")
            rows.append(
                (
                    f"data set-up, {label} ({'jieba runs' if label == 'cold' else 'cache hit'})",
                    f"{time.perf_counter() - start:.2f} s",
                )
            )
    return rows, dm


def peak_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child process (MB, Linux's ru_maxrss in KB)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_maxrss / 1024, children.ru_maxrss / 1024


def child_plain_jieba(path: str) -> dict:
    """The reference: one process, jieba's dictionary loaded, then `jieba.lcut` over every non-blank line."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    start = time.perf_counter()
    jieba.initialize()
    loaded = time.perf_counter()
    tokens = sum(len(jieba.lcut(line)) + 1 for line in lines)  # + the line break
    return {"dictionary_s": loaded - start, "loop_s": time.perf_counter() - loaded, "tokens": tokens}


def child_setup(path: str, cache_dir: str) -> dict:
    """The data module's set-up (prepare_data + setup) from `cache_dir`, with its peak memory."""
    before = peak_mb()[0]
    start = time.perf_counter()
    dm = LyricsDataModule(path, cache_dir=cache_dir)  # data=text's defaults: jieba, min_freq 2
    dm.prepare_data()
    dm.setup("fit")
    seconds = time.perf_counter() - start
    own, workers = peak_mb()
    return {"s": seconds, "mb_before": before, "mb": own, "workers_mb": workers, "tokens": len(dm.corpus)}


CHILD_MEASURES = {"plain": child_plain_jieba, "setup": child_setup}


def child(args: Sequence[str]) -> dict:
    """Run the measure `args[0]` ("plain" or "setup") on the arguments after it."""
    kind, *rest = args
    return CHILD_MEASURES[kind](*rest)


def in_child(*args: str) -> dict:
    """Run a measure of `CHILD_MEASURES` in a fresh Python process (`python -m lyricgen.benchmark ...`) and
    read its JSON answer."""
    package_root = str(Path(__file__).resolve().parents[1])  # importable without an installed package too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "lyricgen.benchmark", *args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"the measure {' '.join(args)} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_rows(factor: int, work: Path, corpus_zip: Path, train_script: Path) -> list[Row]:
    """Set-up of a corpus `factor` times Jay Chou's (`jaychou_lyrics.txt` in `corpus_zip`), against a plain jieba
    loop; then `train_script` (scripts/train.py) with trainer=ddp on two CPU ranks on it, in folders of `work`."""
    with zipfile.ZipFile(corpus_zip) as zf:
        text = zf.read("jaychou_lyrics.txt").decode("utf-8").strip("\n")
    path = work / f"jaychou_x{factor}.txt"
    path.write_text("\n".join([text] * factor) + "\n", encoding="utf-8")
    plain = in_child("plain", str(path))
    cold = in_child("setup", str(path), str(work / "cache"))
    warm = in_child("setup", str(path), str(work / "cache"))
    size = f"{factor}x Jay Chou, {cold['tokens']:,} tokens, {path.stat().st_size / 1e6:.1f} MB"
    reference = plain["dictionary_s"] + plain["loop_s"]
    rows = [
        (
            f"plain jieba.lcut loop, one process ({size})",
            f"{reference:.2f} s ({plain['dictionary_s']:.2f} s dictionary + {plain['loop_s']:.2f} s loop)",
        ),
        (
            f"data set-up, cold ({size}; tokenised on {usable_cpus()} cores, cached)",
            f"{cold['s']:.2f} s = {cold['s'] / reference:.2f}x the plain loop "
            f"({cold['s'] / plain['loop_s']:.2f}x its loop alone)",
        ),
        (f"data set-up, warm ({size}; cache mapped)", f"{warm['s']:.2f} s"),
        (
            "peak memory of the set-up process, cold / warm (after imports)",
            f"{cold['mb']:,.0f} / {warm['mb']:,.0f} MB ({cold['mb_before']:,.0f} MB after imports); "
            f"largest tokenising worker {cold['workers_mb']:,.0f} MB",
        ),
    ]
    # DDP from an empty cache: rank 0 tokenises once before the launch, rank 1 maps the cache.
    run_dir = work / "ddp"
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, str(train_script), "data=text", f"data.path={path}",
            f"paths.data_dir={work / 'ddp-data'}", f"hydra.run.dir={run_dir}", "trainer=ddp", "trainer.devices=2",
            "trainer.accelerator=cpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=20",
            "+trainer.limit_val_batches=5", "+trainer.limit_test_batches=5", "cache=none",
            "callbacks.lyrics_metrics=null",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    logs = {p.name: p.read_text(encoding="utf-8") for p in run_dir.glob("*.log")}
    tokenised = sum(log.count("Tokenised corpus cached in") for log in logs.values())
    mapped = [name for name, log in logs.items() if "mapped from cache" in log]
    finished = done.returncode == 0 and (run_dir / "results.json").is_file()
    rows.append(
        (
            f"train.py trainer=ddp trainer.devices=2 on the {factor}x corpus (20 steps, empty cache at the start)",
            f"{'finished' if finished else f'FAILED (exit {done.returncode})'} in {wall:.0f} s; "
            f"tokenised {tokenised}x; the cache mapped in {', '.join(sorted(mapped)) or 'no log'}",
        )
    )
    return rows


@dataclass
class Report:
    """What the benchmark measured: a few lines about the machine and the model, then the table's rows."""

    header: list[str]
    rows: list[Row]

    def markdown(self) -> str:
        table = "\n".join(f"| {name} | {value} |" for name, value in self.rows)
        return "\n".join(self.header) + "\n\n| measure | value |\n| --- | --- |\n" + table


def benchmark(
    make_datamodule: Callable[[str], LyricsDataModule],
    make_model: Callable[[LyricsDataModule], LyricsLM],
    *,
    clip: float | None,
    log_every_n_steps: int,
    steps: int = 15,
    warmup: int = 3,
    rounds: int = 20,
    gen_tokens: int = 2000,
    gen_rounds: int = 40,
    threads: int = 1,
    ckpt: str | None = None,
    scale: int = 0,
    corpus_zip: Path | None = None,
    train_script: Path | None = None,
    matmul_n: int = 2048,
) -> Report:
    """Every measure, in the order of the table: data set-up (`make_datamodule(cache_dir)`), the corpus repeated
    `scale` times (0: skipped; needs `corpus_zip` and `train_script`), `rounds` alternating rounds of the plain
    loop and of `make_model(datamodule)` trained by Lightning (`warmup` + `steps` batches each, gradients clipped
    at `clip`), FLOP/s, generation (`gen_rounds` rounds), and with a trained checkpoint `ckpt` form decoding and
    the web page. `threads`: torch's threads for all of it (0: torch's choice), restored at the end; one by
    default, pinned, so that the ratios stand for the code and not for what else the cores run (on a 2-core VM,
    four processes read Lightning / plain 0.977-0.998 with two threads, 0.981-0.986 with one)."""
    for name, value, least in (("steps", steps, 1), ("warmup", warmup, 0), ("rounds", rounds, 1)):
        if value < least:
            raise LyricgenError(f"--{name} {value}: give --{name} {least} or more")
    for name, value in (("gen-tokens", gen_tokens), ("gen-rounds", gen_rounds)):
        if value < 1:
            raise LyricgenError(f"--{name} {value}: give --{name} 1 or more")
    if threads < 0:
        raise LyricgenError(f"--threads {threads}: give a number of threads, or 0 for torch's choice")
    if scale and (corpus_zip is None or train_script is None):
        raise ValueError("scale needs corpus_zip and train_script")
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        rows, dm = setup_rows(make_datamodule)
        if scale:
            with tempfile.TemporaryDirectory() as work:
                rows += scale_rows(scale, Path(work), corpus_zip, train_script)
        data = batches(dm, warmup + steps)
        with tempfile.TemporaryDirectory() as log_dir, held_memory() as held:
            training, model = time_training(
                lambda: make_model(dm), data, warmup, rounds, clip, log_every_n_steps, log_dir
            )
        rows += training_rows(training)
        rows += flops_rows(model, max(training.lightning_tps), matmul_n)
        # Generation with a trained checkpoint, or the model just trained (its distributions are peaked like a
        # real model's, but its lines are not yet a real model's: form timings want a checkpoint).
        gen = LyricsGenerator.from_checkpoint(ckpt) if ckpt else LyricsGenerator(model.net.eval(), dm.vocab)
        rows += generation_rows(gen, gen_tokens, gen_rounds)
        # Form decoding only with a trained checkpoint: a model of a few dozen steps rarely ends a line.
        if ckpt:
            form, free_opts, form_opts = form_rows(gen, FORM_TIMINGS)
            rows += form + page_latency(ckpt, free_opts, form_opts, FORM_TIMINGS)
        else:
            rows.append(("generation with form", "not measured: give --ckpt PATH of a trained model"))
        h, n = model.hparams, torch.get_num_threads()
        pinned = "pinned" if threads else "torch's choice"
        header = [
            f"lyricgen benchmark, {datetime.date.today()}, {platform.machine()}, {n} torch thread{'s' * (n != 1)} "
            f"({pinned}), torch {torch.__version__}, lightning {L.__version__}",
            f"model: {h.cell}, emb {h.emb_dim}, hidden {h.hidden_size}, layers {h.num_layers}, vocab {len(dm.vocab)}; "
            f"batch {dm.batch_size} x seq_len {dm.seq_len}; {steps} timed steps after {warmup} warm-up",
            f"generation with {ckpt or 'the model trained above'}; training rounds with "
            + ("freed memory held by glibc's malloc (held_memory)" if held else "the platform's allocator as it is"),
        ]
    finally:
        torch.set_num_threads(threads_before)
    return Report(header, rows)


if __name__ == "__main__":  # a measure in a fresh process, for `in_child`
    print(json.dumps(child(sys.argv[1:])))
