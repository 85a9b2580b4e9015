"""Each tutorial's recipe as written against lyricgen's best on the same corpus, measured in one go.

    python scripts/tutorials.py                      # all five recipes, table on stdout
    python scripts/tutorials.py --max-minutes 5      # cap every run at 5 minutes of training (said in the table)
    python scripts/tutorials.py --readme             # ... and write the table into docs/corpora.md
    python scripts/tutorials.py --experiments d2l_jaychou,jaychou_best

Every recipe is `python scripts/train.py experiment=NAME` (conf/experiment/), run one after the other
in its own directory under multirun/tutorials-<time>/NAME; the table is read from each run's
results.json: test loss in nats per token, test bits per character (comparable across tokenisers on
the same text), wall time, parameters and epochs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/ lives beside scripts/, outside the installed package

from benchmarks.tutorials import RECIPES, run_all, table  # noqa: E402
from lyricgen.cli import fill_readme_block  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default=",".join(RECIPES))
    parser.add_argument("--max-minutes", type=float, default=None, help="cap each run's training time")
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default multirun/tutorials-<time>)")
    parser.add_argument("--readme", action="store_true", help="write the table into docs/corpora.md")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args()
    names = [n for n in args.experiments.split(",") if n]
    text = table(run_all(names, args.out, args.max_minutes, args.overrides), args.max_minutes)
    print(text)
    if args.readme:
        fill_readme_block(ROOT / "docs" / "corpora.md", "tutorials", text)


if __name__ == "__main__":
    main()
