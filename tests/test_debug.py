"""The debug runs of conf/debug/ (`debug=fdr|overfit|limit|profiler`), through the real config and train(cfg)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.profilers import SimpleProfiler

from lyricgen.config import check_config
from tests.conftest import CONF, compose_train, tiny_overrides, train_in_process
from tests.test_train import scalars


@pytest.fixture
def random_corpus(tmp_path: Path) -> Path:
    """200 lines of 8 characters drawn at random from 40: nothing to learn but the lines themselves, so a training
    loss near 0 can only come from learning its batches by heart."""
    rng = random.Random(0)
    chars = [chr(0x4E00 + 37 * i) for i in range(40)]
    path = tmp_path / "random.txt"
    path.write_text("\n".join("".join(rng.choices(chars, k=8)) for _ in range(200)) + "\n", encoding="utf-8")
    return path


def debug_overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    """The tiny corpus's overrides without their number of epochs: the debug run's own."""
    return [o for o in tiny_overrides(corpus, out, *extra) if not o.startswith("trainer.max_epochs=")]


def run_dir_of(overrides: list[str]) -> str:
    """The run directory Hydra would make for these overrides."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", overrides, return_hydra_config=True).hydra.run.dir


# What Lightning's Trainer has in each debug run.
TRAINER = {
    "default": {"max_epochs": 1},
    "fdr": {"fast_dev_run": True, "max_steps": 1},
    "limit": {"max_epochs": 3, "limit_train_batches": 10, "limit_val_batches": 3, "limit_test_batches": 3},
    "overfit": {"max_epochs": 100, "overfit_batches": 3, "checkpoint_callback": None},
    "profiler": {"max_epochs": 1},
}


@pytest.mark.parametrize("debug", sorted(TRAINER))
def test_a_debug_run_is_short_on_one_process_and_leaves_out_what_follows_training(tmp_path, debug):
    overrides = ["trainer=ddp", "experiment=jaychou_best", f"debug={debug}"]
    cfg = compose_train(overrides, tmp_path)
    check_config(cfg, "train")  # the start-up checks take every Trainer option the debug runs set
    assert run_dir_of(overrides).startswith("outputs/debug/")  # apart from the runs that make models
    assert cfg.callbacks.early_stopping is None and cfg.callbacks.lyrics_metrics is None
    assert not cfg.cache.windows  # no cache grid after training
    assert cfg.trainer.devices == 1 and cfg.trainer.strategy == "auto"  # one process: trainer=ddp undone
    trainer = instantiate(cfg.trainer, logger=False)  # what Lightning makes of them
    assert {key: getattr(trainer, key) for key in TRAINER[debug]} == TRAINER[debug] and trainer.num_devices == 1
    assert isinstance(trainer.profiler, SimpleProfiler) == (debug == "profiler")
    regularisers = ("dropout", "emb_dropout", "word_dropout", "weight_decay")  # jaychou_best's 0.65, 0.65, 0.1, 0.01
    assert [cfg.model[k] for k in regularisers] == ([0.0] * 4 if debug == "overfit" else [0.65, 0.65, 0.1, 0.01])


def test_overfit_drives_the_training_loss_near_zero_on_a_few_batches(tmp_path, random_corpus):
    run = tmp_path / "run"
    overrides = tiny_overrides(random_corpus, tmp_path, "tokenizer=char", "data.min_freq=1", "debug=overfit")
    result = train_in_process([*overrides, "trainer.max_epochs=30"], run)  # (the config's 100: the real corpora's)
    events = scalars(run)
    loss = [e.value for e in events.Scalars("train/loss")]
    assert result["global_step"] == 3 * 30  # the same 3 batches, 30 times
    assert loss[-1] < 0.5 < 3.0 < loss[0]  # learnt by heart
    assert events.Scalars("val/loss")[-1].value > 3.0  # ... and nothing of the rest: overfitting, as asked
    assert not (run / "checkpoints").exists() and "best_ckpt" not in result  # no model to keep
    assert not [tag for tag in events.Tags()["tensors"] if tag.startswith("samples")]


@pytest.mark.parametrize("debug", ["fdr", "profiler"])
def test_fast_dev_run_and_profiler_run_through_the_real_training(tmp_path, tiny_corpus, caplog, debug):
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO):
        result = train_in_process(debug_overrides(tiny_corpus, tmp_path, f"debug={debug}"), run)
    assert result["epochs"] == 1 and "test_ppl" in result and "test_ppl_cache" not in result
    if debug == "fdr":  # one batch of each stage; of the checkpoints, Lightning writes only last.ckpt, at the end
        assert result["global_step"] == 1 and [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
        assert "best_ckpt" not in result and not (run / "tensorboard").exists()  # (nothing logged)
    else:  # a whole epoch, then the table of where its time went
        assert "FIT Profiler Report" in caplog.text and "run_training_batch" in caplog.text
        assert result["global_step"] > 1 and (run / "checkpoints" / "last.ckpt").is_file()
