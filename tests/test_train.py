"""End to end through the real training function `train(cfg)` with the composed config, on the tiny corpus
(subprocess runs of the script, for exit codes, messages and Ctrl-C, are in test_reliability.py)."""

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.vocab import Vocab
from tests.conftest import compose_train, tiny_overrides, train_in_process


def scalars(run_dir: Path) -> EventAccumulator:
    (version,) = (run_dir / "tensorboard").iterdir()  # one version directory per run, named for the run list
    acc = EventAccumulator(str(version), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def hparams_plugin_data(acc: EventAccumulator, tag: str) -> plugin_data_pb2.HParamsPluginData:
    return plugin_data_pb2.HParamsPluginData.FromString(acc.SummaryMetadata(tag).plugin_data.content)


@pytest.mark.portable
def test_training_drops_the_loss_and_writes_a_checkpoint_with_vocabulary(tmp_path, tiny_corpus, caplog):
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="lyricgen"):
        returned = train_in_process(tiny_overrides(tiny_corpus, tmp_path), run_dir)
    assert f"Best checkpoint: {returned['best_ckpt']}" in caplog.text

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

    # protocol v2: the test split is scored once, with the best-by-val checkpoint, and reported
    results = json.loads((run_dir / "results.json").read_text())
    assert results == returned  # what train() returns is what it wrote
    for key in ("test_loss", "test_ppl", "test_bpc", "best_val_bpc", "unk_share_test", "unk_share_val"):
        assert key in results, key
    assert results["test_ppl"] == pytest.approx(math.exp(results["test_loss"]), rel=1e-4)
    assert 0 < results["test_bpc"] < results["test_loss"] / math.log(2)  # every token is at least one character
    assert [e.value for e in events.Scalars("test/ppl")] == [pytest.approx(results["test_ppl"], rel=1e-5)]
    assert "test/bpc" in events.Tags()["scalars"] and "val/bpc" in events.Tags()["scalars"]
    assert "Test (best checkpoint): loss" in caplog.text
    # the continuous cache: settings from the grid of conf/cache/default.yaml, chosen on val, test scored once
    assert results["cache_window"] in (0, 100, 200, 400, 800) and 0 <= results["cache_lambda"] <= 0.8
    assert results["test_ppl_cache"] == pytest.approx(math.exp(results["test_loss_cache"]), rel=1e-6)
    assert results["test_ppl_stream"] == pytest.approx(
        results["test_ppl"], rel=0.25
    )  # the same weights, read as one stream
    assert results["val_ppl_cache"] <= results["val_ppl_stream"] * (1 + 1e-6)  # tuned there: never worse on val
    assert "ontinuous cache" in caplog.text


def test_train_on_val_is_a_final_run_without_validation_that_tests_its_last_epoch(tmp_path, tiny_corpus, caplog):
    from lyricgen.checkpoint import best_checkpoint_of
    from lyricgen.config import final_run
    from lyricgen.decoding import DecodingOptions
    from lyricgen.errors import LyricgenError
    from lyricgen.evaluation import evaluate_checkpoint

    run_dir = tmp_path / "run"
    final = ["data.train_on_val=true", "trainer.max_epochs=6"]
    # settings that would keep Lightning from saving each epoch without validation, or refuse to build
    extra = ["+trainer.check_val_every_n_epoch=2", "callbacks.model_checkpoint.save_top_k=3"]
    overrides = tiny_overrides(tiny_corpus, tmp_path, *final, *extra)
    with caplog.at_level(logging.INFO, logger="lyricgen"):
        returned = train_in_process(overrides, run_dir)
    assert "data.train_on_val=true: training on the training and validation lines" in caplog.text
    assert "(the validation lines included: data.train_on_val)" in caplog.text
    events = scalars(run_dir)
    train_loss = [e.value for e in events.Scalars("train/loss")]
    assert train_loss[-1] < 0.3 * train_loss[0]
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("val/")]  # no validation ran
    samples = [tag for tag in events.Tags()["tensors"] if tag.startswith("samples/")]
    assert samples and len(events.Tensors(samples[0])) == 6  # samples after every training epoch instead
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["final-epoch05.ckpt", "last.ckpt"]  # the last epoch, no "best" picked on trained-on text
    assert returned["final_ckpt"].endswith("final-epoch05.ckpt") and "best_val_ppl" not in returned
    assert str(best_checkpoint_of(run_dir)) == returned["final_ckpt"]  # what generate.py picks in the run
    assert "test_ppl_cache" not in returned and "best_val_bpc" not in returned  # the cache is tuned on val: off
    assert "unk_share_test" in returned and "unk_share_val" not in returned
    assert returned["test_loss"] < 0.5 and "Test (final checkpoint): loss" in caplog.text
    # the checkpoint evaluates with its run's data settings: test figures, no val ones
    cfg = compose_train(overrides, run_dir)
    opts = DecodingOptions.from_mapping({"num_samples": 2, "lines": 2, "length": 30})
    result = evaluate_checkpoint(returned["final_ckpt"], instantiate(cfg.data), opts, accelerator="cpu")
    assert result["test/loss"] == pytest.approx(returned["test_loss"], rel=1e-5)
    assert not [k for k in result if k.startswith(("val/", "corpus/"))] and "novelty" in result
    # ... and with data settings that say nothing of it (a checkpoint moved away from its run): the checkpoint says
    plain = instantiate(compose_train(tiny_overrides(tiny_corpus, tmp_path), run_dir).data)
    result = evaluate_checkpoint(returned["final_ckpt"], plain, opts, accelerator="cpu")
    assert "test/loss" in result and not [k for k in result if k.startswith(("val/", "corpus/"))]
    with pytest.raises(LyricgenError, match="model.scheduler=plateau"):
        final_run(compose_train(tiny_overrides(tiny_corpus, tmp_path, *final, "model.scheduler=plateau"), run_dir))
    assert final_run(compose_train(tiny_overrides(tiny_corpus, tmp_path), run_dir)) is None  # an ordinary run


def test_hparams_summary_carries_the_run_figures(trained_run):
    acc = scalars(trained_run)
    results = json.loads((trained_run / "results.json").read_text())
    experiment = hparams_plugin_data(acc, "_hparams_/experiment").experiment
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {
        "hp/best_val_ppl",
        "hp/test_ppl",
        "hp/test_bpc",
        "hp/test_ppl_cache",
        "hp/novelty",
        "hp/distinct_2",
    } <= metric_tags
    start = hparams_plugin_data(acc, "_hparams_/session_start_info").session_start_info
    assert start.hparams["model/cell"].string_value == "rnn"
    assert start.hparams["data/seq_len"].number_value == 32 and "seed" in start.hparams
    (test_ppl,) = acc.Scalars("hp/test_ppl")  # the metric values the HParams table shows
    assert test_ppl.value == pytest.approx(results["test_ppl"], rel=1e-5)
    assert acc.Scalars("hp/best_val_ppl")[0].value == pytest.approx(results["best_val_ppl"], rel=1e-5)
    assert (trained_run / "tensorboard").iterdir().__next__().name.startswith("rnn_")  # a name in the run list


GPU = CUDAAccelerator.is_available()


@pytest.mark.parametrize(
    "trainer, accelerator",
    [
        ("default", CUDAAccelerator if GPU else CPUAccelerator),  # accelerator: auto takes a GPU if there is one
        ("cpu", CPUAccelerator),
        pytest.param("gpu", CUDAAccelerator, marks=pytest.mark.skipif(not GPU, reason="no CUDA GPU here")),
    ],
)
def test_fast_dev_run_per_trainer_config(tmp_path, tiny_corpus, trainer, accelerator):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("trainer.accelerator")]
    cfg = compose_train([*overrides, f"trainer={trainer}", "+trainer.fast_dev_run=true"], tmp_path / "run")
    built = instantiate(cfg.trainer, logger=False)  # what train() builds from this trainer config
    assert type(built.accelerator) is accelerator and built.num_devices == 1
    result = train_in_process([*overrides, f"trainer={trainer}", "+trainer.fast_dev_run=true"], tmp_path / "run")
    assert result["global_step"] == 1 and math.isfinite(result["test_ppl"])  # one batch of each stage ran


def test_results_say_where_the_time_went(trained_run):
    result = json.loads((trained_run / "results.json").read_text())
    phases = {k: v for k, v in result.items() if k.startswith("phase_")}
    assert set(phases) >= {"phase_setup_s", "phase_fit_s", "phase_samples_s", "phase_test_s", "phase_stream_cache_s"}
    assert all(v >= 0 for v in phases.values())
    assert phases["phase_samples_s"] <= phases["phase_fit_s"] <= result["wall_s"]


def test_train_accuracy_is_logged_at_every_step_the_loss_is(tmp_path, tiny_corpus):
    """train/acc is computed only on the steps Lightning's loggers write: its curve has each of them."""
    extra = ("trainer.log_every_n_steps=3", "trainer.max_epochs=3", "callbacks.lyrics_metrics=null", "cache=none")
    result = train_in_process(tiny_overrides(tiny_corpus, tmp_path, *extra), tmp_path / "run")
    events = scalars(tmp_path / "run")
    loss_steps = [e.step for e in events.Scalars("train/loss")]
    acc = events.Scalars("train/acc")
    assert [e.step for e in acc] == loss_steps and len(loss_steps) == result["global_step"] // 3
    assert all(0 <= e.value <= 1 for e in acc)
