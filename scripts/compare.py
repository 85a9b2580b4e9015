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
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from lyricgen.cli import fill_readme_block

ROOT = Path(__file__).resolve().parents[1]


def table(results: list[dict], overrides: list[str]) -> str:
    rows = [
        "| model | best val/ppl | test/ppl | test/bpc | test/ppl with cache | wall time (s) | parameters "
        "| novelty | distinct-2 | repeated-line rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        rows.append(
            f"| {r['model']} | {r.get('best_val_ppl', float('nan')):.2f} | {r.get('test_ppl', float('nan')):.2f} | "
            f"{r.get('test_bpc', float('nan')):.3f} | {r.get('test_ppl_cache', float('nan')):.2f} | "
            f"{r['wall_s']:.0f} | {r['params']:,} | "
            f"{r.get('novelty', float('nan')):.3f} | {r.get('distinct-2', float('nan')):.3f} | "
            f"{r.get('repeated-line rate', float('nan')):.3f} |"
        )
    rows.append(
        f"\nMeasured by `python scripts/compare.py{' -- ' + ' '.join(overrides) if overrides else ''}` on "
        f"{datetime.date.today()} ({platform.machine()}, {os.cpu_count()} CPU cores); wall time includes "
        "data set-up and the end-of-training metrics."
    )
    return "\n".join(rows)


def seed_table(sweeps: list[Path]) -> str:
    """Mean ± sd over the runs of each sweep (e.g. `train.py -m ... seed=1,2,3`), one line per sweep."""
    keys = ("best_val_ppl", "test_ppl", "test_bpc", "test_ppl_stream", "test_ppl_cache", "wall_s")
    rows = ["| sweep | runs | " + " | ".join(keys) + " | test_ppl per run |", "| --- " * (len(keys) + 3) + "|"]
    for sweep in sweeps:
        results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
        if not results:
            sys.exit(f"error: {sweep} has no */results.json; give the directory of a finished multirun")
        cells = []
        for key in keys:
            values = [r[key] for r in results if key in r]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            digits = 3 if "bpc" in key else 2
            cells.append(f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}" if values else "")
        per_run = ", ".join(f"{r['test_ppl']:.2f}" for r in results if "test_ppl" in r)
        rows.append(f"| {sweep.name} | {len(results)} | " + " | ".join(cells) + f" | {per_run} |")
    return "\n".join(rows)


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
    sweep = Path(args.sweep_dir or ROOT / "multirun" / f"compare-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        "-m",
        f"model={args.models}",
        f"hydra.sweep.dir={sweep}",
        *args.overrides,
    ]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"error: training failed (exit {done.returncode}); see the output above")
    order = args.models.split(",")
    results = sorted(
        (json.loads(p.read_text()) for p in sweep.glob("*/results.json")), key=lambda r: order.index(r["model"])
    )
    text = table(results, args.overrides)
    print(text)
    if args.readme:
        fill_readme_block(ROOT / "docs" / "models.md", "comparison", text)


if __name__ == "__main__":
    main()
