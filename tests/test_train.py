"""End to end through the real Hydra entry point, on the tiny corpus."""

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.vocab import Vocab
from tests.conftest import run_script, tiny_overrides


def scalars(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_training_drops_the_loss_and_writes_a_checkpoint_with_vocabulary(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    result = run_script("train", *tiny_overrides(tiny_corpus, tmp_path), f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Best checkpoint:" in result.stdout + result.stderr

    events = scalars(run_dir)
    train_loss = [e.value for e in events.Scalars("train/loss")]
    val_ppl = [e.value for e in events.Scalars("val/ppl")]
    assert len(val_ppl) == 10 and "val/loss" in events.Tags()["scalars"]
    assert train_loss[-1] < 0.3 * train_loss[0]  # it really learnt the repeated lines
    assert min(val_ppl) < 3.0  # validation lines are the same lines: nearly certain
    assert any(tag.startswith("samples/") for tag in events.Tags()["tensors"])  # lyrics on the dashboard
    assert any(tag.startswith("samples_form/") for tag in events.Tags()["tensors"])  # ... and with form
    assert {"eval/rhyme_rate", "eval/copy_rate_4_words"} <= set(events.Tags()["scalars"])

    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts and any(name.startswith("best-") for name in ckpts)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    vocab = Vocab.load(run_dir / "vocab.json")
    assert Vocab.from_dict(ckpt["lyricgen"]["vocab"]) == vocab and "星星" in vocab
    assert ckpt["hyper_parameters"]["vocab_size"] == len(vocab)
    ngrams = NgramIndex.from_dict(ckpt["lyricgen"]["ngrams"])  # for no_copy: the training split's word runs
    assert ngrams.max_n == 8 and ngrams.contains(vocab.encode(["星星", "在", "天上"]))
    assert (run_dir / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize("trainer", ["default", "cpu"])
def test_fast_dev_run_per_trainer_config(tmp_path, tiny_corpus, trainer):
    result = run_script(
        "train", *tiny_overrides(tiny_corpus, tmp_path), f"trainer={trainer}", "trainer.accelerator=cpu",
        "+trainer.fast_dev_run=true", f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
