"""The comparison table of scripts/compare.py: rnn, gru and lstm trained with one recipe (a Hydra multirun of
scripts/train.py), each run's results.json read into one Markdown row; and mean ± sd over finished seed sweeps."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

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


def train_models(models: str, sweep: Path | None, overrides: list[str]) -> list[dict]:
    """`scripts/train.py -m model=<models>` into `sweep` (default multirun/compare-<time>): each run's results.json,
    in the order of `models`."""
    sweep = Path(sweep or ROOT / "multirun" / f"compare-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", f"model={models}", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run([*cmd, *overrides], cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"error: training failed (exit {done.returncode}); see the output above")
    order = models.split(",")
    return sorted(
        (json.loads(p.read_text()) for p in sweep.glob("*/results.json")), key=lambda r: order.index(r["model"])
    )
