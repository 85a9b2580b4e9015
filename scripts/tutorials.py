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
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from lyricgen.cli import fill_readme_block

ROOT = Path(__file__).resolve().parents[1]
# (experiment, what it is); the tuned recipe of each corpus comes after the tutorials of that corpus
RECIPES = {
    "tf_shakespeare": "TensorFlow tutorial: char GRU 1024, tiny Shakespeare",
    "novel_char": "char SimpleRNN 256 tutorial, on tiny Shakespeare",
    "shakespeare_char": "**lyricgen's best**, tiny Shakespeare",
    "d2l_jaychou": "d2l PyTorch chapter: RNN 256, Jay Chou words",
    "jaychou_best": "**lyricgen's best**, Jay Chou words",
}


def run(name: str, out: Path, max_minutes: float | None, overrides: list[str]) -> dict:
    cap = []
    if max_minutes:  # Lightning stops training there ("DD:HH:MM:SS")
        seconds = round(max_minutes * 60)
        days, hours, minutes = seconds // 86400, seconds // 3600 % 24, seconds // 60 % 60
        cap = [f"+trainer.max_time='{days:02d}:{hours:02d}:{minutes:02d}:{seconds % 60:02d}'"]
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        f"experiment={name}",
        f"hydra.run.dir={out}",
        *cap,
        *overrides,
    ]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"error: experiment={name} failed (exit {done.returncode}); see the output above")
    return json.loads((out / "results.json").read_text())


def table(results: dict[str, dict], max_minutes: float | None) -> str:
    """The Markdown table of the runs, with the command that measured it, the date and the machine."""
    rows = [
        "| recipe | experiment | test loss (nats/token) | test bpc | wall (s) | parameters | epochs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        rows.append(
            f"| {RECIPES.get(name, name)} | `{name}` | {r.get('test_loss', float('nan')):.3f} | "
            f"{r.get('test_bpc', float('nan')):.3f} | {r['wall_s']:.0f} | {r['params']:,} | {r['epochs']} |"
        )
    cap = f", each run capped at {max_minutes:g} minutes of training (`trainer.max_time`)" if max_minutes else ""
    options = "" if list(results) == list(RECIPES) else f" --experiments {','.join(results)}"
    options += f" --max-minutes {max_minutes:g}" if max_minutes else ""
    rows.append(
        f"\nMeasured by `python scripts/tutorials.py{options}` on "
        f"{datetime.date.today()} ({platform.machine()}, {os.cpu_count()} CPU cores{cap})."
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default=",".join(RECIPES))
    parser.add_argument("--max-minutes", type=float, default=None, help="cap each run's training time")
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default multirun/tutorials-<time>)")
    parser.add_argument("--readme", action="store_true", help="write the table into docs/corpora.md")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args()
    names = [n for n in args.experiments.split(",") if n]
    unknown = [n for n in names if not (ROOT / "conf" / "experiment" / f"{n}.yaml").is_file()]
    if unknown:
        known = ", ".join(sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
        sys.exit(f"error: no experiment {unknown[0]!r}; choose from {known}")
    out = args.out or ROOT / "multirun" / f"tutorials-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    results = {name: run(name, out / name, args.max_minutes, args.overrides) for name in names}
    text = table(results, args.max_minutes)
    print(text)
    if args.readme:
        fill_readme_block(ROOT / "docs" / "corpora.md", "tutorials", text)


if __name__ == "__main__":
    main()
