"""The model the page writes with: loaded once, shared by every request, switched to another training run by
name (never by a path a visitor types)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from lyricgen.checkpoint import best_checkpoint_of, run_dir_of, training_runs
from lyricgen.critic import training_lines_of_run
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator


@dataclass
class LoadedModel:
    """A checkpoint ready to write with, and what the page shows about it."""

    generator: LyricsGenerator
    ckpt_path: Path
    run: str | None  # its run's name under runs_dir; None for a checkpoint outside it
    training_lines: list[list[str]] | None  # the run's training text, when at hand (the critic's "where")
    results: dict  # the run's results.json ({} if there is none or it cannot be read)


class Models:
    """The model every request writes with: loaded once and shared read-only; a switch replaces it whole
    (requests under way finish with the model they started with)."""

    def __init__(self, runs_dir: str | Path = "outputs", device: str = "cpu") -> None:
        self.runs_dir = Path(runs_dir)
        self.device = device
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None

    def runs(self) -> dict[str, Path]:
        """The training runs under runs_dir by name (their path relative to it), newest first."""
        return {run.relative_to(self.runs_dir).as_posix(): run for run in training_runs(self.runs_dir)}

    def load(self, ckpt_path: str | Path) -> LoadedModel:
        """Load a checkpoint and make it the current model."""
        ckpt_path = Path(ckpt_path)
        generator = LyricsGenerator.from_checkpoint(ckpt_path, device=self.device)
        generator.word_tables("shisan")  # warm up here, not in the first request: rhyme tables, jieba
        generator.tokenizer.tokenize_line("星星")
        run_dir = run_dir_of(ckpt_path)
        names = {path.resolve(): name for name, path in self.runs().items()}
        loaded = LoadedModel(
            generator,
            ckpt_path,
            names.get(run_dir),
            training_lines_of_run(ckpt_path, generator),
            _read_json(run_dir / "results.json"),
        )
        with self._lock:
            self.current = loaded
        return loaded

    def load_run(self, name: str) -> LoadedModel:
        """Switch to the best checkpoint of a run picked by name from `runs()` (never a path from outside); a
        run whose checkpoint is a link to a file outside runs_dir is refused too."""
        runs = self.runs()
        if name not in runs:
            raise LyricgenError(f"no training run {name!r} under {self.runs_dir}/; pick one from the list (refresh it)")
        ckpt_path = best_checkpoint_of(runs[name])
        if not ckpt_path.resolve().is_relative_to(self.runs_dir.resolve()):
            raise LyricgenError(
                f"run {name!r}: its checkpoint {ckpt_path} is a link to a file outside {self.runs_dir}/, which the "
                "page never loads; copy the run into it, or start the page with ckpt_path=PATH"
            )
        return self.load(ckpt_path)

    def run_choices(self) -> list[tuple[str, str]]:
        """(label, name) of each run for the page's list: its name, cell and best val bits per character, every
        character counted, which compares runs of any tokeniser (val/ppl, per token, for a run made before it;
        test for a final run, which has no validation)."""
        choices = []
        for name, run in self.runs().items():
            results = _read_json(run / "results.json")
            label = " · ".join([name, results.get("model", "?"), _run_figure(results)])
            choices.append((label, name))
        return choices


def _run_figure(results: dict) -> str:
    """A run's figure for the list: val bpc, else val/ppl, else a final run's test figure."""
    if results.get("best_val_bpc"):
        return f"val bpc {results['best_val_bpc']:.3f}"
    if results.get("best_val_ppl"):
        return f"val/ppl {results['best_val_ppl']:.2f}"
    if "final_ckpt" in results and results.get("test_ppl") is not None:
        test = (
            f"test bpc {results['test_bpc']:.3f}" if results.get("test_bpc") else f"test/ppl {results['test_ppl']:.2f}"
        )
        return f"final run, {test}"
    return "no results.json"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_info(loaded: LoadedModel) -> str:
    """Markdown: which checkpoint is loaded, its sizes and its run's val/test figures: bits per character, every
    character counted (comparable across tokenisers), and perplexity (per token of this model's tokeniser)."""
    net, gen, r = loaded.generator.net, loaded.generator, loaded.results

    def fig(key: str, digits: int = 2) -> str:
        return f"{r[key]:.{digits}f}" if isinstance(r.get(key), (int, float)) else "–"

    rows = [
        ("run", f"`{loaded.run}`" if loaded.run else "– (a checkpoint outside the runs directory)"),
        ("checkpoint", f"`{loaded.ckpt_path}`"),
        ("cell", net.cell),
        ("embedding / hidden / layers", f"{net.embedding.embedding_dim} / {net.hidden_size} / {net.num_layers}"),
        ("vocabulary", f"{len(gen.vocab):,} tokens"),
        ("parameters", f"{sum(p.numel() for p in net.parameters()):,}"),
        (
            "best val bpc (every character)",
            "– (a final run: trained on train + val)" if "final_ckpt" in r else fig("best_val_bpc", 3),
        ),
        ("test bpc (every character)", fig("test_bpc", 3)),
        ("best val/ppl (per token)", "– (a final run)" if "final_ckpt" in r else fig("best_val_ppl")),
        ("test/ppl (per token)", fig("test_ppl")),
        ("n-gram index (no_copy, copies)", "yes" if gen.ngrams is not None else "no: retrain for no_copy"),
        ("training text (where a copy is from)", "at hand" if loaded.training_lines is not None else "not found"),
    ]
    return "\n".join(["| loaded model | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])
