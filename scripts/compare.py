"""Train rnn, gru and lstm with one recipe and print the comparison table
(model x val/ppl x test/ppl x cache x time x size).

    python scripts/compare.py                       # the default recipe, table on stdout
    python scripts/compare.py --readme              # ... and write it into docs/models.md
    python scripts/compare.py -- trainer.max_epochs=12 data.seq_len=200   # other overrides
    python scripts/compare.py --seeds multirun/A multirun/B   # mean ± sd of finished seed sweeps, no training

It runs `scripts/train.py -m model=rnn,gru,lstm` (a Hydra multirun, one directory per model) and reads
each run's results.json, so the table is measured, never typed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ lives beside scripts/, outside the installed package

from benchmarks.models import seed_table, table, train_models  # noqa: E402
from lyricgen.cli import fill_readme_block  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="rnn,gru,lstm")
    parser.add_argument("--sweep-dir", default=None, help="where the runs go (default multirun/compare-<time>)")
    parser.add_argument("--readme", action="store_true", help="write the table into docs/models.md")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=Path,
        metavar="SWEEP_DIR",
        help="print mean ± sd of finished sweeps instead of training",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args()
    if args.seeds:
        print(seed_table(args.seeds))
        return
    text = table(train_models(args.models, args.sweep_dir, args.overrides), args.overrides)
    print(text)
    if args.readme:
        fill_readme_block(ROOT / "docs" / "models.md", "comparison", text)


if __name__ == "__main__":
    main()
