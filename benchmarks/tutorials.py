"""The table of scripts/tutorials.py: each tutorial's recipe (conf/experiment/) trained by scripts/train.py, one
after the other, and read back from each run's results.json."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

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


def run_all(names: list[str], out: Path | None, max_minutes: float | None, overrides: list[str]) -> dict[str, dict]:
    """Each experiment in `names`, one after the other, in its folder of `out` (default
    multirun/tutorials-<time>); an experiment conf/experiment/ lacks is refused before any run."""
    unknown = [n for n in names if not (ROOT / "conf" / "experiment" / f"{n}.yaml").is_file()]
    if unknown:
        known = ", ".join(sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
        sys.exit(f"error: no experiment {unknown[0]!r}; choose from {known}")
    out = out or ROOT / "multirun" / f"tutorials-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    return {name: run(name, out / name, max_minutes, overrides) for name in names}
