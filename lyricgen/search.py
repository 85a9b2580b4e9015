"""What a hyperparameter search (`-m hparams_search=...`) leaves behind besides the sweeper's best settings: a
table of its trials, each one's settings and val bits per character, or `failed`. The sweeper itself is Hydra's
Optuna sweeper, as the plugin in hydra_plugins/lyricgen_search names it."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from lyricgen.files import write_atomically


def trial_rows(sweep_dir: Path) -> list[tuple[str, list[str], float | None]]:
    """Each trial of a sweep directory, in order: its folder's name, its overrides, its val bits per character
    (None for a trial that failed). A folder without Hydra's `.hydra/overrides.yaml` is not a trial."""
    rows = []
    jobs = [p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()]
    for job in sorted(jobs, key=lambda p: (len(p.name), p.name)):  # 0, 1, ..., 10: as numbers sort
        overrides = OmegaConf.to_container(OmegaConf.load(job / ".hydra" / "overrides.yaml"))
        results = job / "results.json"
        bpc = json.loads(results.read_text(encoding="utf-8")).get("best_val_bpc") if results.exists() else None
        rows.append((job.name, overrides, bpc))
    return rows


def write_trials(sweep_dir: Path, searched: list[str]) -> Path:
    """`trials.md`: a Markdown table of the trials with the settings of `searched` (the keys the sweeper
    samples); the best (lowest val bits per character) in bold."""
    rows = trial_rows(sweep_dir)
    done = [bpc for _, _, bpc in rows if bpc is not None]
    best = min(done) if done else None
    lines = ["| trial | val bpc | settings |", "| --- | --- | --- |"]
    for name, overrides, bpc in rows:
        figure = "failed" if bpc is None else f"{bpc:.3f}"
        if bpc is not None and bpc == best:
            figure = f"**{figure}**"
        settings = " ".join(f"`{_short(o)}`" for o in overrides if o.split("=", 1)[0] in searched)
        lines.append(f"| {name} | {figure} | {settings} |")
    path = sweep_dir / "trials.md"
    write_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def _short(override: str) -> str:
    """`key=value` with a float value to 4 significant digits (the sampler's 0.0019956529392808394: 0.001996)."""
    key, _, value = override.partition("=")
    try:
        return f"{key}={float(value):.4g}" if "." in value else override
    except ValueError:
        return override
