"""Every measure of the benchmark, in the order of its table (`benchmark`), and the report it prints."""

from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from benchmarks import Row
from benchmarks.data import scale_rows, setup_rows
from benchmarks.generation import FORM_TIMINGS, form_rows, generation_rows
from benchmarks.page import page_latency
from benchmarks.training import batches, flops_rows, held_memory, time_training, training_rows
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator
from lyricgen.model import LyricsLM


def arguments(description: str) -> argparse.ArgumentParser:
    """scripts/benchmark.py's command line: `benchmark`'s options, then Hydra overrides after `--`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each round")
    parser.add_argument("--rounds", type=int, default=20, help="alternating timings of each loop")
    parser.add_argument("--gen-tokens", type=int, default=2000)
    parser.add_argument("--gen-rounds", type=int, default=40, help="alternating timings of each decoding setting")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, pinned so that runs agree (default 1; 0: torch's choice)"
    )
    parser.add_argument(
        "--ckpt", default=None, help="measure generation with this trained checkpoint (default: the model trained here)"
    )
    parser.add_argument(
        "--scale", type=int, default=100, help="data set-up of the corpus repeated this many times (0: skip)"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml (after --)")
    return parser


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
