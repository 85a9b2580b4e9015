"""Benchmark: the Lightning training step against a plain PyTorch loop, generation, data set-up, FLOP/s.

    python scripts/benchmark.py                      # the default model (model=rnn data=jaychou)
    python scripts/benchmark.py --steps 300 -- model=lstm model.hidden_size=512
    python scripts/benchmark.py --ckpt outputs/.../best-....ckpt   # also form decoding and the web page's latency
    python scripts/benchmark.py --scale 0            # without the 100x-corpus data set-up (about 2 minutes)

Both training loops run in this process, on the same batches of the real corpus, with the same
model sizes, optimiser and gradient clipping, after the same warm-up, over the same number of steps.
Anything after `--` is a Hydra override of conf/train.yaml, so the benchmark measures what
`scripts/train.py` trains.

Data at scale (`--scale N`, default 100): the Jay Chou corpus repeated N times in one text file. Each
measure runs in a fresh process, as a user's run would: a plain single-process `jieba.lcut` loop over its
lines (the reference), the data module's cold set-up (empty cache: tokenised on every core, cached) and
warm set-up (cache mapped), with each process's peak memory; then `scripts/train.py trainer=ddp
trainer.devices=2` on it from an empty cache, whose logs must show one tokenisation and the other rank
mapping the cache.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import itertools
import json
import logging
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from lyricgen.cli import user_errors
from lyricgen.config import check_config
from lyricgen.data.corpus import usable_cpus
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.decoding import DecodingOptions
from lyricgen.generation import LyricsGenerator
from lyricgen.model import LyricsLM

ROOT = Path(__file__).resolve().parents[1]


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


def batches(datamodule: LyricsDataModule, n: int):
    """`n` training batches, cycling over epochs (the same ones for both loops)."""
    return list(itertools.islice(itertools.cycle(datamodule.train_dataloader()), n))


def time_plain(cfg, vocab_size: int, data: list, warmup: int) -> float:
    m = cfg.model
    net = PlainRNNLM(vocab_size, m.emb_dim, m.hidden_size, m.num_layers, m.cell, m.dropout, m.emb_dropout)
    opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[m.optimizer](
        net.parameters(), lr=m.lr, weight_decay=m.weight_decay
    )
    clip = cfg.trainer.get("gradient_clip_val")
    net.train()
    for i, (x, y) in enumerate(data):
        if i == warmup:
            start = time.perf_counter()
        logits = net(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
    return time.perf_counter() - start


class StepTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.end = time.perf_counter()


def time_lightning(cfg, datamodule: LyricsDataModule, data: list, warmup: int, log_dir: str) -> tuple[float, LyricsLM]:
    """The project's module and trainer settings, with its TensorBoard logging (no progress bar)."""
    model = instantiate(cfg.model, vocab_size=len(datamodule.vocab), vocab=datamodule.vocab)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=len(data),
        enable_checkpointing=False,
        logger=L.pytorch.loggers.TensorBoardLogger(log_dir),
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.trainer.get("gradient_clip_val"),
        callbacks=[timer],
    )
    loader = torch.utils.data.DataLoader(data, batch_size=None)  # the same batches, in the same order
    trainer.fit(model, train_dataloaders=loader)
    return timer.end - timer.start, model


def flops_per_token(cfg, vocab_size: int) -> float:
    """Training FLOPs per token: 3x the forward matmuls (input, recurrent, output projections)."""
    m = cfg.model
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[m.cell]
    rnn = sum(
        2 * gates * ((m.emb_dim if i == 0 else m.hidden_size) + m.hidden_size) * m.hidden_size
        for i in range(m.num_layers)
    )
    return 3 * (rnn + 2 * m.hidden_size * vocab_size)


def matmul_peak(n: int = 2048, repeat: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeat):
        torch.mm(a, b)
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def page_latency(ckpt: str, free: DecodingOptions, form: DecodingOptions, repeats: int) -> list[tuple[str, str]]:
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


def in_child(*args: str) -> dict:
    """Run this script's `--child` measure in a fresh Python process and read its JSON answer."""
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_rows(factor: int, work: Path) -> list[tuple[str, str]]:
    """Set-up of a corpus `factor` times Jay Chou's, against a plain jieba loop; then DDP on it."""
    with zipfile.ZipFile(ROOT / "data" / "jaychou_lyrics.txt.zip") as zf:
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
            sys.executable, str(ROOT / "scripts" / "train.py"), "data=text", f"data.path={path}",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per round")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="alternating timings of each loop")
    parser.add_argument("--gen-tokens", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--ckpt", default=None, help="measure generation with this trained checkpoint (default: the model trained here)"
    )
    parser.add_argument(
        "--scale", type=int, default=100, help="data set-up of the corpus repeated this many times (0: skip)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # a measure run in a fresh process
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml (after --)")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps({"plain": child_plain_jieba, "setup": child_setup}[kind](*rest)))
        return
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*args.overrides, "paths.output_dir=."])
    with user_errors():  # the overrides are checked as train.py checks them
        check_config(cfg, "train")
    L.seed_everything(cfg.seed, verbose=False)
    rows = []

    # Data set-up: cold (jieba runs, empty cache) and warm (cache hit).
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):
            dm = instantiate(cfg.data, cache_dir=cache)
            start = time.perf_counter()
            dm.prepare_data()
            dm.setup("fit")
            rows.append(
                (
                    f"data set-up, {label} ({'jieba runs' if label == 'cold' else 'cache hit'})",
                    f"{time.perf_counter() - start:.2f} s",
                )
            )

    if args.scale:
        with tempfile.TemporaryDirectory() as work:
            rows += scale_rows(args.scale, Path(work))

    data = batches(dm, args.warmup + args.steps)
    tokens = sum(int((y != -100).sum()) for _, y in data[args.warmup :])
    # Alternate the two loops and keep each one's best round (as timeit does): on a shared VM the
    # speed drifts by +-10% from round to round, more than the difference being measured.
    plain_tps, light_tps = [], []
    with tempfile.TemporaryDirectory() as log_dir:
        for _ in range(args.rounds):
            plain_tps.append(tokens / time_plain(cfg, len(dm.vocab), data, args.warmup))
            seconds, model = time_lightning(cfg, dm, data, args.warmup, log_dir)
            light_tps.append(tokens / seconds)
    spread = f"rounds {min(plain_tps):,.0f}-{max(plain_tps):,.0f} and {min(light_tps):,.0f}-{max(light_tps):,.0f}"
    plain_tps, light_tps = max(plain_tps), max(light_tps)
    rows += [
        (f"training, plain PyTorch loop (best of {args.rounds})", f"{plain_tps:,.0f} tokens/s"),
        (
            f"training, Lightning: lyricgen module + TensorBoard logging (best of {args.rounds})",
            f"{light_tps:,.0f} tokens/s",
        ),
        ("training tokens/s, all rounds (plain, Lightning)", spread),
        ("ratio Lightning / plain", f"{light_tps / plain_tps:.3f}"),
    ]
    peak = matmul_peak()
    achieved = light_tps * flops_per_token(cfg, len(dm.vocab))
    rows += [
        ("matmul peak (torch.mm 2048x2048, fp32)", f"{peak / 1e9:,.1f} GFLOP/s"),
        ("training FLOP/s (Lightning)", f"{achieved / 1e9:,.2f} GFLOP/s = {100 * achieved / peak:.1f}% of peak"),
    ]

    # Generation with a trained checkpoint, or the model just trained (its distributions are peaked like a
    # real model's, but its lines are not yet a real model's: form timings want --ckpt).
    gen = LyricsGenerator.from_checkpoint(args.ckpt) if args.ckpt else LyricsGenerator(model.net.eval(), dm.vocab)
    gen.generate("星星", seed=0, opts=DecodingOptions(length=50))  # warm-up
    kinds = [
        ("1 sample, generate.py defaults: sample, temperature 1, top_p 0.95", DecodingOptions(top_p=0.95)),
        ("1 sample, greedy", DecodingOptions(strategy="greedy")),
        ("1 sample, top_k 40", DecodingOptions(top_k=40)),
        ("100 samples at once (num_samples=100), top_p 0.95", DecodingOptions(top_p=0.95, num_samples=100)),
    ]
    for _, opts in kinds:
        opts.length = args.gen_tokens if opts.num_samples == 1 else max(1, args.gen_tokens // 20)
    best = [0.0] * len(kinds)
    for _ in range(7):  # the kinds alternated, best of 7 each: a decode of a few thousand steps drifts with the VM
        for i, (_, opts) in enumerate(kinds):
            start = time.perf_counter()
            gen.generate("星星", seed=0, opts=opts)
            best[i] = max(best[i], opts.num_samples * opts.length / (time.perf_counter() - start))
    speed = {label.split(",")[1].strip(): b for (label, _), b in zip(kinds, best)}
    rows += [(f"generation, {label}", f"{b:,.0f} tokens/s") for (label, _), b in zip(kinds, best)]
    ratio = speed["generate.py defaults: sample"] / speed["greedy"]
    rows.append(("sampling/greedy (tokens/s of top_p 0.95 over greedy, 1 sample)", f"{ratio:.2f}"))
    rows.append(
        ("top_k/greedy (tokens/s of top_k 40 over greedy, 1 sample)", f"{speed['top_k 40'] / speed['greedy']:.2f}")
    )

    # Form decoding: 8 lines with rhyme=AABB line_chars=7 against 8 free lines, same settings (best of rounds).
    # Only with a trained checkpoint: a model of a few dozen steps rarely ends a line.
    if args.ckpt:
        free = DecodingOptions(lines=8, length=None, temperature=0.8, top_p=0.95)
        form = DecodingOptions(lines=8, length=None, temperature=0.8, top_p=0.95, rhyme="AABB", line_chars=7)
        gen.generate("", seed=0, opts=form)  # warm-up: pypinyin and the per-word tables
        times = {}
        for label, opts in (("free", free), ("form", form)):
            spans = []
            for r in range(args.rounds * 4):
                start = time.perf_counter()
                gen.generate("", seed=r, opts=opts)
                spans.append(time.perf_counter() - start)
            times[label] = min(spans)
        rows += [
            ("generation, 8 free lines (best of rounds)", f"{1000 * times['free']:.1f} ms"),
            (
                f"generation, 8 lines rhyme=AABB line_chars=7, best_of {form.best_of} (best of rounds)",
                f"{1000 * times['form']:.1f} ms",
            ),
            ("ratio form / free", f"{times['form'] / times['free']:.2f}"),
        ]
        rows += page_latency(args.ckpt, free, form, args.rounds * 4)
    else:
        rows.append(("generation with form", "not measured: give --ckpt PATH of a trained model"))

    m = cfg.model
    print(
        f"lyricgen benchmark, {datetime.date.today()}, {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, lightning {L.__version__}"
    )
    print(
        f"model: {m.cell}, emb {m.emb_dim}, hidden {m.hidden_size}, layers {m.num_layers}, vocab {len(dm.vocab)}; "
        f"batch {cfg.data.batch_size} x seq_len {cfg.data.seq_len}; "
        f"{args.steps} timed steps after {args.warmup} warm-up"
    )
    print(f"generation with {args.ckpt or 'the model trained above'}\n")
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
