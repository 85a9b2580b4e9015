"""benchmarks/ on the tiny corpus: the plain baseline trains the Lightning model's network, the rounds
give finite timings and ratios, the child measures run in a fresh process, and scripts/benchmark.py prints
its table."""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate

from benchmarks.data import in_child
from benchmarks.generation import generation_rows
from benchmarks.training import batches, plain_like, time_plain, time_training, training_rows
from lyricgen.generation import LyricsGenerator
from lyricgen.model import LyricsLM
from tests.conftest import ROOT, TINY_LINES, compose_train, tiny_overrides


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a machine whose cores other jobs share, two threads wait on each other (7x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(tiny_corpus, tmp_path):
    """The composed config and the set-up data module of the tiny corpus."""
    cfg = compose_train(tiny_overrides(tiny_corpus, tmp_path), tmp_path)
    dm = instantiate(cfg.data, cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    dm.setup("fit")
    return cfg, dm


def make_model(cfg, dm) -> LyricsLM:
    return instantiate(cfg.model, vocab_size=len(dm.vocab), vocab=dm.vocab)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_plain_baseline_has_the_lightning_networks_size_and_optimiser(cell, layers):
    model = LyricsLM(vocab_size=57, cell=cell, emb_dim=12, hidden_size=20, num_layers=layers, lr=3e-3)
    net, opt = plain_like(model)
    assert n_params(net) == n_params(model.net)
    assert type(opt) is torch.optim.AdamW and opt.param_groups[0]["lr"] == 3e-3


def test_plain_baseline_trains(tiny):
    cfg, dm = tiny
    data = batches(dm, 40)
    assert len(data) == 40 and all(x.shape == (2, 32) for x, _ in data)
    steps, losses = time_plain(*plain_like(make_model(cfg, dm)), data, warmup=5, clip=0.5)
    assert len(steps) == 35 and all(t > 0 for t in steps) and len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5  # it learns the four lines


def test_training_rounds_alternate_and_give_one_ratio_a_round(tiny, tmp_path):
    cfg, dm = tiny
    data = batches(dm, 6)
    result, model = time_training(lambda: make_model(cfg, dm), data, 2, 2, 0.5, 1, str(tmp_path / "logs"))
    timed = data[2:]  # after the warm-up; the shuffled loader's short last chunk pads some rows with -100
    assert 0 < result.tokens == sum(int((y != -100).sum()) for _, y in timed) <= 4 * 2 * 32  # their real targets
    assert len(result.plain_s) == len(result.lightning_s) == len(result.ratios) == 2
    assert [len(r) for r in result.plain_steps + result.lightning_steps] == [4] * 4  # each timed step, each round
    assert all(t > 0 for r in result.plain_steps + result.lightning_steps for t in r)
    assert result.plain_s[0] == pytest.approx(sum(result.plain_steps[0]))
    assert all(math.isfinite(r) and r > 0 for r in result.ratios + result.plain_tps + result.lightning_tps)
    steps = sorted(t for r in result.plain_steps for t in r), sorted(t for r in result.lightning_steps for t in r)
    assert result.ratio == pytest.approx(((steps[0][3] + steps[0][4]) / 2) / ((steps[1][3] + steps[1][4]) / 2))
    assert model.trainer.global_step == 6  # the model of the last Lightning round, trained
    rows = dict(training_rows(result))
    ratio = re.fullmatch(
        r"([\d.]+) \(median steps of 2 rounds side by side; rounds ([\d.]+)-([\d.]+)\)",
        rows["ratio Lightning / plain"],
    )
    assert float(ratio[1]) == pytest.approx(result.ratio, abs=5e-4)  # all rounds' median steps
    assert 0 < float(ratio[2]) <= float(ratio[3])  # the rounds' own ratios, smallest to largest
    assert f"{max(result.plain_tps):,.0f} tokens/s" == rows["training, plain PyTorch loop (best of 2)"]


CHURN = """
import json, resource, torch
from benchmarks.training import held_memory

def faults(steps=6):  # minor page faults of allocating, writing and freeing a 40 MB tensor `steps` times
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        torch.ones(10_000_000).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

loose = faults()
with held_memory() as held:
    faults(1)  # the heap grows once
    kept = faults()
print(json.dumps({"loose": loose, "held": held, "kept": kept}))
"""


def test_held_memory_stops_the_allocator_faulting_freed_memory_in_again():
    """In a fresh process (this one's heap depends on the tests before): glibc maps each 40 MB block afresh,
    about 10,000 pages a step; inside `held_memory` the heap keeps them."""
    out = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, check=True, cwd=ROOT)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not got["held"]:
        pytest.skip("not glibc: the allocator is left as it is")
    assert got["loose"] > 6 * 5_000 and got["kept"] < got["loose"] / 20


def test_generation_rows_give_each_setting_and_the_ratios(tiny):
    cfg, dm = tiny
    gen = LyricsGenerator(make_model(cfg, dm).net.eval(), dm.vocab)
    rows = dict(generation_rows(gen, gen_tokens=40, rounds=3))
    speeds = [v for k, v in rows.items() if k.startswith("generation, ")]
    assert len(speeds) == 5 and all(float(v.removesuffix(" tokens/s").replace(",", "")) > 0 for v in speeds)
    for name in ("sampling/greedy", "top_k/greedy", "defaults/greedy"):
        (value,) = [v for k, v in rows.items() if k.startswith(name)]
        m = re.fullmatch(r"([\d.]+) \(median of 3 rounds side by side; ([\d.]+)-([\d.]+)\)", value)
        assert m and 0 < float(m[2]) <= float(m[1]) <= float(m[3])


def test_child_measures_run_in_a_fresh_process(tmp_path):
    corpus = tmp_path / "lines.txt"  # enough for data=text's default batches (32 x 35 tokens)
    corpus.write_text("\n".join(TINY_LINES * 150) + "\n", encoding="utf-8")
    plain = in_child("plain", str(corpus))
    setup = in_child("setup", str(corpus), str(tmp_path / "cache"))
    assert plain["tokens"] == setup["tokens"] > 600  # the same jieba words and line breaks of the 600 lines
    assert plain["loop_s"] > 0 and setup["s"] > 0 and setup["mb"] >= setup["mb_before"] > 0


@pytest.fixture
def lightning_log_level():
    """scripts/benchmark.py quiets Lightning's logger; give the next tests their level back."""
    logger = logging.getLogger("lightning")
    level = logger.level
    yield
    logger.setLevel(level)


def test_script_prints_the_table(tiny_corpus, tmp_path, capsys, lightning_log_level):
    from scripts.benchmark import main

    torch.set_num_threads(2)
    args = ["--scale", "0", "--steps", "3", "--warmup", "1", "--rounds", "1", "--gen-tokens", "40"]
    main([*args, "--gen-rounds", "2", "--", *tiny_overrides(tiny_corpus, tmp_path)])
    out = capsys.readouterr().out
    assert torch.get_num_threads() == 2  # put back
    header, table = out.split("\n\n| measure | value |\n| --- | --- |\n")
    assert ", 1 torch thread (pinned), " in header  # the default: one thread, so that two runs agree
    assert "model: rnn, emb 32, hidden 64, layers 1" in header and "3 timed steps after 1 warm-up" in header
    names = [line.split(" | ")[0].removeprefix("| ") for line in table.strip().splitlines()]
    assert names == [
        "data set-up, cold (jieba runs)",
        "data set-up, warm (cache hit)",
        "training, plain PyTorch loop (best of 1)",
        "training, Lightning: lyricgen module + TensorBoard logging (best of 1)",
        "training tokens/s, all rounds (plain, Lightning)",
        "ratio Lightning / plain",
        "matmul peak (torch.mm 2048x2048, fp32)",
        "training FLOP/s (Lightning)",
        "generation, 1 sample, top_p 0.95, temperature 1",
        "generation, 1 sample, greedy",
        "generation, 1 sample, top_k 40, temperature 1",
        "generation, 100 samples at once (num_samples=100), top_p 0.95, temperature 1",
        "generation, 1 sample, the defaults (generate.py, the page): temperature 0.8, top_p 1",
        "sampling/greedy (tokens/s of top_p 0.95 over greedy, 1 sample)",
        "top_k/greedy (tokens/s of top_k 40 over greedy, 1 sample)",
        "defaults/greedy (tokens/s of the defaults over greedy, 1 sample)",
        "generation with form",
    ]


def test_script_refuses_a_benchmark_without_timed_steps(tiny_corpus, tmp_path, capsys, lightning_log_level):
    from scripts.benchmark import main

    with pytest.raises(SystemExit) as exit_:
        main(["--scale", "0", "--steps", "0", "--", *tiny_overrides(tiny_corpus, tmp_path)])
    assert exit_.value.code == 2
    assert "error: --steps 0: give --steps 1 or more" in capsys.readouterr().err


def test_script_refuses_a_negative_thread_count(tiny_corpus, tmp_path, capsys, lightning_log_level):
    from scripts.benchmark import main

    with pytest.raises(SystemExit) as exit_:
        main(["--scale", "0", "--threads", "-1", "--", *tiny_overrides(tiny_corpus, tmp_path)])
    assert exit_.value.code == 2
    assert "error: --threads -1: give a number of threads, or 0 for torch's choice" in capsys.readouterr().err
