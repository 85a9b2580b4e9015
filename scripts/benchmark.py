"""Benchmark: the Lightning training step against a plain PyTorch loop, generation, data set-up, FLOP/s.

    python scripts/benchmark.py                      # the default model (model=rnn data=jaychou)
    python scripts/benchmark.py --steps 300 -- model=lstm model.hidden_size=512
    python scripts/benchmark.py --ckpt outputs/.../best-....ckpt   # also form decoding and the web page's latency
    python scripts/benchmark.py --scale 0            # without the 100x-corpus data set-up (about 2 minutes)

Anything after `--` is a Hydra override of conf/train.yaml, so the benchmark measures what `scripts/train.py`
trains. The measures, and how their rounds alternate, are in benchmarks/ beside this folder; this script
composes the config and calls them.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    if str(ROOT) not in sys.path:  # benchmarks/ lives beside scripts/, outside the installed package
        sys.path.insert(0, str(ROOT))
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from benchmarks.run import arguments, benchmark
    from lyricgen.cli import user_errors
    from lyricgen.config import check_config

    args = vars(arguments(__doc__).parse_args(argv))
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*args.pop("overrides"), "paths.output_dir=."])
    with user_errors():  # the overrides are checked as train.py checks them
        check_config(cfg, "train")
        L.seed_everything(cfg.seed, verbose=False)
        report = benchmark(
            lambda cache_dir: instantiate(cfg.data, cache_dir=cache_dir),
            lambda dm: instantiate(cfg.model, vocab_size=len(dm.vocab), vocab=dm.vocab),
            clip=cfg.trainer.get("gradient_clip_val"),
            log_every_n_steps=cfg.trainer.log_every_n_steps,
            corpus_zip=ROOT / "data" / "jaychou_lyrics.txt.zip",
            train_script=ROOT / "scripts" / "train.py",
            **args,
        )
    print(report.markdown())


if __name__ == "__main__":
    main()
