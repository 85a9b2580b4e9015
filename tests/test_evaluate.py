"""Evaluating a checkpoint (lyricgen.evaluation, scripts/evaluate.py) of the tiny corpus's trained run: the
figures must be the training run's own, and the lyric measures those of the learnt lines."""

import json
import math

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lyricgen.decoding import DecodingOptions
from lyricgen.evaluation import evaluate_checkpoint
from tests.conftest import assert_user_error, best_checkpoint, run_script, tiny_overrides, train_in_process

# Greedy decoding from 星星 recites the four learnt lines; 8 lines are the four twice.
GREEDY = DecodingOptions(strategy="greedy", num_samples=3, lines=8, length=400)


@pytest.fixture(scope="module")
def evaluated(trained_run):
    data = instantiate(OmegaConf.load(trained_run / ".hydra" / "config.yaml").data)  # the run's data settings
    result = evaluate_checkpoint(str(best_checkpoint(trained_run)), data, GREEDY, "星星", 0, "cpu", None)
    return result, json.loads((trained_run / "results.json").read_text())


def test_perplexities_are_those_the_training_run_logged(evaluated):
    result, trained = evaluated
    assert result["val/ppl"] == pytest.approx(trained["best_val_ppl"], rel=1e-4)  # the best checkpoint, re-scored
    assert result["test/ppl"] == pytest.approx(trained["test_ppl"], rel=1e-4)
    assert result["test/bpc"] == pytest.approx(trained["test_bpc"], rel=1e-4)
    assert result["val/ppl"] == pytest.approx(math.exp(result["val/loss"]), rel=1e-5)
    assert result["val/unk share"] == result["test/unk share"] == 0.0  # every held-out word is a training word


def test_lyric_measures_of_the_samples_and_of_the_held_out_lyrics(evaluated):
    result, _ = evaluated
    for prefix in ("", "corpus/"):  # the samples, and the validation block in pieces of 8 lines
        assert result[f"{prefix}novelty"] == 0.0  # every line is a training line
        assert result[f"{prefix}repeated-line rate"] == pytest.approx(0.5)  # the four lines, twice
        # each line copies a training line, but 我爱你|到|永远 has only three words: no run of four
        assert result[f"{prefix}copy rate (>= 4 words)"] == 0.75
    assert result["distinct-2"] == pytest.approx(result["corpus/distinct-2"])  # the same eight lines
    assert result["sample ppl"] < 3.0  # the model is sure of what it learnt


def test_script_prints_the_table_and_nothing_else(trained_run, tmp_path):
    ckpt = best_checkpoint(trained_run)
    out = run_script("evaluate", f"ckpt_path={ckpt}", "strategy=greedy", "num_samples=2", "cache=none", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    trained = json.loads((trained_run / "results.json").read_text())
    assert f"| val/ppl | {trained['best_val_ppl']:.3f} |  |" in out.stdout
    assert "| novelty | 0.000 | 0.000 |" in out.stdout
    assert out.stderr.splitlines() == [
        f"checkpoint: {ckpt}",
        f"data settings: {trained_run / '.hydra' / 'config.yaml'}",
    ]  # no Lightning tips, no library warnings


def test_script_refuses_bad_values_in_one_line(tmp_path):
    out = run_script("evaluate", "num_samples=abc", cwd=tmp_path)
    assert_user_error(out)
    assert out.stderr.strip().splitlines() == [
        "error: num_samples='abc' is not an integer; num_samples takes an integer >= 1; e.g. num_samples=1"
    ]


def test_a_bounded_test_split_is_the_one_training_and_evaluate_read(tmp_path, tiny_corpus):
    """data.test_max_tokens cuts the test block; results.json says how many tokens were scored, and
    evaluate.py, which takes the run's data settings, scores the same lines to the same figure."""
    run = tmp_path / "run"
    extra = ("data.test_max_tokens=40", "trainer.max_epochs=2", "callbacks.lyrics_metrics=null", "cache=none")
    trained = train_in_process(tiny_overrides(tiny_corpus, tmp_path, *extra), run)
    data = instantiate(OmegaConf.load(run / ".hydra" / "config.yaml").data)
    result = evaluate_checkpoint(str(best_checkpoint(run)), data, GREEDY, "星星", 0, "cpu", None)
    whole = instantiate(OmegaConf.load(run / ".hydra" / "config.yaml").data, test_max_tokens=None)
    whole.prepare_data()
    whole.setup("fit")
    assert trained["test_tokens"] == len(data.test_ids) - 1 <= 40 < len(whole.test_ids) - 1
    assert result["test/ppl"] == pytest.approx(trained["test_ppl"], rel=1e-4)
