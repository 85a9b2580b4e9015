"""Hydra multirun over the three cells, and Lightning's DDP with two CPU processes (gloo)."""

import json
import statistics

import lightning as L
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lyricgen.model import LyricsLM
from tests.conftest import run_script, tiny_overrides


@pytest.mark.slow
def test_multirun_trains_each_cell_in_its_own_directory(tmp_path, tiny_corpus):
    sweep = tmp_path / "sweep"
    result = run_script(
        "train", "-m", "model=rnn,gru,lstm", *tiny_overrides(tiny_corpus, tmp_path), f"hydra.sweep.dir={sweep}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.parent for p in sweep.glob("*/results.json"))
    assert [json.loads((r / "results.json").read_text())["model"] for r in runs] == ["rnn", "gru", "lstm"]
    for run in runs:
        (version,) = (run / "tensorboard").iterdir()
        acc = EventAccumulator(str(version))
        acc.Reload()
        loss = [e.value for e in acc.Scalars("train/loss")]
        assert loss[-1] < 0.5 * loss[0], (run.name, loss[0], loss[-1])  # every cell really learns
        assert {"eval/novelty", "eval/distinct-1", "eval/distinct-2"} <= set(acc.Tags()["scalars"])
    # compare.py --seeds summarises a finished sweep: mean ± sd over its runs, read from results.json
    summary = run_script("compare", "--seeds", str(sweep))
    assert summary.returncode == 0, summary.stderr
    row = summary.stdout.strip().splitlines()[-1].split(" | ")
    test_ppls = [json.loads((r / "results.json").read_text())["test_ppl"] for r in runs]
    assert row[1] == "3" and row[3] == f"{statistics.mean(test_ppls):.2f} ± {statistics.stdev(test_ppls):.2f}"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    result = run_script(
        "train",
        *tiny_overrides(tiny_corpus, tmp_path, "trainer.max_epochs=3"),
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        f"hydra.run.dir={run_dir}",
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    # rank zero writes alone (fit, test and the HParams summary may each open a file: one process id)
    events = list((run_dir / "tensorboard").glob("*/events.out.tfevents.*"))
    assert events and len({p.name.split(".")[-2] for p in events}) == 1, events
    # jieba ran once (rank zero, before the launch); rank 1 mapped the cache instead of tokenising
    logs = {p.name: p.read_text() for p in run_dir.glob("*.log")}
    assert sum(text.count("Tokenised corpus cached in") for text in logs.values()) == 1, logs.keys()
    assert (
        "mapped from cache" in logs["train_ddp_process_1.log"] and "Tokenising" not in logs["train_ddp_process_1.log"]
    )
    logged = json.loads((run_dir / "results.json").read_text())
    # val/ppl was reduced over both ranks: it equals the perplexity of the whole split in one process
    dm = instantiate(OmegaConf.load(run_dir / ".hydra" / "config.yaml").data)  # the run's own data settings
    model = LyricsLM.load_from_checkpoint(logged["best_ckpt"], map_location="cpu")
    dm.vocab = model.vocab
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (scores,) = trainer.validate(model, datamodule=dm, verbose=False)
    assert scores["val/ppl"] == pytest.approx(logged["best_val_ppl"], rel=1e-4)
