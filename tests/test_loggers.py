"""Any of Lightning's loggers (conf/logger/): the curves, the learning rate of every step and the run's summary
reach each in the form it takes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from tests.conftest import tiny_overrides, train_in_process
from tests.test_train import hparams_plugin_data, scalars


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    (version,) = (run_dir / "csv").iterdir()  # one version directory per run, named as TensorBoard's
    with open(version / "metrics.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def csv_curve(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def test_csv_logs_the_curves_of_tensorboard_and_the_run_summary(tmp_path, tiny_corpus):
    run = tmp_path / "run"
    extra = ("logger=many", "trainer.max_epochs=3", "callbacks.lyrics_metrics=null", "cache=none")
    result = train_in_process(tiny_overrides(tiny_corpus, tmp_path, *extra), run)
    events, rows = scalars(run), csv_rows(run)
    for tag in ("val/loss", "val/ppl", "train/loss"):  # the same figures at the same steps
        board = [(e.step, e.value) for e in events.Scalars(tag)]
        assert len(board) >= 3 and csv_curve(rows, tag) == [(s, pytest.approx(v, rel=1e-6)) for s, v in board], tag
    lr = csv_curve(rows, "lr-AdamW")  # the learning rate at every step the loss is logged (every step here)
    assert [s for s, _ in lr] == [e.step for e in events.Scalars("lr-AdamW")] == list(range(result["global_step"]))
    assert all(a > b for (_, a), (_, b) in zip(lr, lr[1:]))  # the cosine schedule, step by step
    # the summary: in the CSV as the final figures at the last step; in TensorBoard's HParams tab as before
    (final,) = [r for r in rows if r.get("hp/test_ppl")]
    assert int(final["step"]) == result["global_step"]
    assert float(final["hp/test_ppl"]) == pytest.approx(result["test_ppl"], rel=1e-6)
    assert float(final["hp/best_val_ppl"]) == pytest.approx(result["best_val_ppl"], rel=1e-6)
    (version,) = (run / "csv").iterdir()
    hparams = yaml.safe_load((version / "hparams.yaml").read_text(encoding="utf-8"))
    assert hparams["model"]["cell"] == "rnn" and hparams["data"]["seq_len"] == 32 and hparams["seed"] == 42
    tags = {m.name.tag for m in hparams_plugin_data(events, "_hparams_/experiment").experiment.metric_infos}
    assert {"hp/test_ppl", "hp/best_val_ppl"} <= tags
    assert events.Scalars("hp/test_ppl")[0].value == pytest.approx(result["test_ppl"], rel=1e-5)
