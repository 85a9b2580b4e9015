"""Hyperparameter searches (`-m hparams_search=jaychou_optuna`): Hydra's Optuna sweeper runs real trainings of
the tiny corpus, minimises what train.py returns (val bits per character), goes on past a refused trial, never
reads the test split, and leaves the trials' table beside the best settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lyricgen.cli import check_sweeper
from lyricgen.search import write_trials
from tests.conftest import assert_user_error, run_script, tiny_overrides

try:
    import hydra_plugins.hydra_optuna_sweeper  # noqa: F401

    SWEEPER = True
except ImportError:
    SWEEPER = False
needs_sweeper = pytest.mark.skipif(not SWEEPER, reason="the tune extra: pip install -e '.[tune]'")


def search(corpus: Path, out: Path, *extra: str):
    """The shipped search on the tiny corpus: its knobs sampled, the tiny model's size and sequences fixed."""
    overrides = [o for o in tiny_overrides(corpus, out) if not o.startswith(("model.dropout", "model.emb_dropout"))]
    overrides = [o for o in overrides if not o.startswith(("model.lr", "trainer.max_epochs", "model.emb_dim"))]
    return run_script(
        "train",
        "-m",
        "hparams_search=jaychou_optuna",
        *overrides,
        "trainer.max_epochs=3",
        f"hydra.sweep.dir={out / 'sweep'}",
        *extra,
    )


@needs_sweeper
@pytest.mark.slow
def test_a_search_minimises_val_bpc_goes_on_past_a_refused_trial_and_never_tests(tmp_path, tiny_corpus):
    # word_dropout 5.0 is out of range: the trials that draw it are refused (seed 42 draws it in trial 1 of 4)
    result = search(tiny_corpus, tmp_path, "hydra.sweeper.n_trials=4", "model.word_dropout=choice(0.0,5.0)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Failed experiment: error: model.word_dropout=5.0 is out of range" in result.stdout  # Hydra's log
    sweep = tmp_path / "sweep"
    trials = sorted((p for p in sweep.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    assert len(trials) == 4  # the search went on after the refusal
    done = {p.name: json.loads((p / "results.json").read_text()) for p in trials if (p / "results.json").exists()}
    assert 0 < len(done) < 4
    assert all(not any(k.startswith("test_") for k in r) for r in done.values())  # test=false: no trial tests
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == pytest.approx(min(r["best_val_bpc"] for r in done.values()))
    assert best.best_params["model.word_dropout"] == 0.0
    table = (sweep / "trials.md").read_text(encoding="utf-8")
    assert table.count("| failed |") == 4 - len(done)
    assert f"**{best.best_value:.3f}**" in table and "model.word_dropout=5" in table


@needs_sweeper
@pytest.mark.slow
def test_a_search_whose_every_trial_is_refused_ends_in_one_line(tmp_path, tiny_corpus):
    result = search(tiny_corpus, tmp_path, "hydra.sweeper.n_trials=2", "model.word_dropout=5.0")
    assert_user_error(result, "no trial of the search completed", str(tmp_path / "sweep"))
    assert result.stdout.count("Failed experiment: error: model.word_dropout=5.0 is out of range") == 2


def test_hparams_search_without_the_sweeper_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_optuna_sweeper", None)  # as if not installed
    with pytest.raises(SystemExit) as stop:
        check_sweeper(["train.py", "-m", "hparams_search=jaychou_optuna"])
    assert stop.value.code == 2
    assert 'pip install -e ".[tune]"' in capsys.readouterr().err
    check_sweeper(["train.py", "model=gru"])  # no search: nothing to check


def test_the_trials_table_names_what_the_trials_differ_in(tmp_path):
    for number, (lr, bpc) in enumerate([("0.0019956529392808394", 8.91), ("0.004", None), ("0.001", 8.75)]):
        job = tmp_path / str(number)
        (job / ".hydra").mkdir(parents=True)
        OmegaConf.save(
            OmegaConf.create(["hparams_search=jaychou_optuna", f"model.lr={lr}"]), job / ".hydra/overrides.yaml"
        )
        if bpc is not None:
            (job / "results.json").write_text(json.dumps({"best_val_bpc": bpc}))
    rows = write_trials(tmp_path, ["model.lr"]).read_text(encoding="utf-8").splitlines()
    assert rows[2:] == [
        "| 0 | 8.910 | `model.lr=0.001996` |",
        "| 1 | failed | `model.lr=0.004` |",
        "| 2 | **8.750** | `model.lr=0.001` |",
    ]


def test_the_trials_table_skips_folders_that_are_not_trials_and_lists_what_was_searched(tmp_path):
    (tmp_path / ".submitit").mkdir()  # not a trial: no .hydra/overrides.yaml
    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(["model.lr=0.002", "seed=1"]), job / ".hydra/overrides.yaml")
    rows = write_trials(tmp_path, ["model.lr"]).read_text(encoding="utf-8").splitlines()
    assert rows[2:] == ["| 0 | failed | `model.lr=0.002` |"]  # one trial: its searched setting all the same


@pytest.mark.slow
def test_a_plain_sweep_stops_at_a_refused_job_in_one_line(tmp_path, tiny_corpus):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("model.dropout")]
    result = run_script("train", "-m", *overrides, "model.dropout=1.5,0.1", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_user_error(result, "model.dropout=1.5 is out of range")
    assert not (tmp_path / "sweep" / "1").exists()  # the sweep stopped there, as a run does
