"""Benchmark: the Lightning training step against a plain PyTorch loop, generation, data set-up, FLOP/s.

    python scripts/benchmark.py                      # the default model (model=rnn data=jaychou)
    python scripts/benchmark.py --steps 300 -- model=lstm model.hidden_size=512
    python scripts/benchmark.py --ckpt outputs/.../best-....ckpt   # also form decoding and the web page's latency
    python scripts/benchmark.py --scale 0            # without the 100x-corpus data set-up (about 2 minutes)

Both training loops run in this process, on the same batches of the real corpus, with the same
model sizes, optimiser and gradient clipping, after the same warm-up, over the same number of steps,
in 20 short alternating rounds (plain, Lightning; then Lightning, plain; ...: 3 + 15 steps each, so that
the two sides of a round are seconds apart), with the allocator keeping freed memory for both. Everything
runs on one torch thread (`--threads`, pinned so that the cores' other work does not land inside the
steps; 0: torch's choice). Lightning / plain is the ratio of the two loops' median step times over all
rounds (a busy moment of the machine slows a few steps, not the median), with each round's own ratio
beside it; sampling / greedy is the median of 40 rounds' ratios.
Anything after `--` is a Hydra override of conf/train.yaml, so the benchmark measures what
`scripts/train.py` trains.

Data at scale (`--scale N`, default 100): the Jay Chou corpus repeated N times in one text file. Each
measure runs in a fresh process, as a user's run would: a plain single-process `jieba.lcut` loop over its
lines (the reference), the data module's cold set-up (empty cache: tokenised on every core, cached) and
warm set-up (cache mapped), with each process's peak memory; then `scripts/train.py trainer=ddp
trainer.devices=2` on it from an empty cache, whose logs must show one tokenisation and the other rank
mapping the cache.

The measures are `lyricgen.benchmark`'s; this script composes the config and calls them.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path

import lightning as L
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lyricgen.benchmark import benchmark, child
from lyricgen.cli import user_errors
from lyricgen.config import check_config

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # a measure run in a fresh process
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml (after --)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*args.overrides, "paths.output_dir=."])
    with user_errors():  # the overrides are checked as train.py checks them
        check_config(cfg, "train")
        L.seed_everything(cfg.seed, verbose=False)
        report = benchmark(
            lambda cache_dir: instantiate(cfg.data, cache_dir=cache_dir),
            lambda dm: instantiate(cfg.model, vocab_size=len(dm.vocab), vocab=dm.vocab),
            clip=cfg.trainer.get("gradient_clip_val"),
            log_every_n_steps=cfg.trainer.log_every_n_steps,
            steps=args.steps,
            warmup=args.warmup,
            rounds=args.rounds,
            gen_tokens=args.gen_tokens,
            gen_rounds=args.gen_rounds,
            threads=args.threads,
            ckpt=args.ckpt,
            scale=args.scale,
            corpus_zip=ROOT / "data" / "jaychou_lyrics.txt.zip",
            train_script=ROOT / "scripts" / "train.py",
        )
    print(report.markdown())


if __name__ == "__main__":
    main()
