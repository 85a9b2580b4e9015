"""Bad input ends with one `error:` line and exit code 2; interruption and resume lose nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from lightning.pytorch.accelerators import CUDAAccelerator

from lyricgen.data.corpus import TokenizedCorpus
from lyricgen.data.source import read_songs
from lyricgen.data.tokenizer import JiebaTokenizer
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from tests.conftest import (
    ROOT,
    TINY_LINES,
    RunsCode,
    assert_resumes,
    assert_user_error,
    best_checkpoint,
    interruptible,
    quick_overrides,
    run_script,
    tiny_overrides,
    train_in_process,
)


def train(tmp_path: Path, corpus: Path | str, *extra: str) -> subprocess.CompletedProcess:
    return run_script("train", *tiny_overrides(Path(corpus), tmp_path), f"hydra.run.dir={tmp_path / 'run'}", *extra)


# --- training: the corpus -------------------------------------------------------------------------


def test_corpus_path_that_does_not_exist(tmp_path):
    assert_user_error(train(tmp_path, tmp_path / "nope.txt"), "nope.txt does not exist", "data.path")


@pytest.mark.parametrize("content", [b"", b" \n\t\n\xe3\x80\x80\n"], ids=["empty", "whitespace"])
def test_empty_corpus(tmp_path, content):
    (tmp_path / "c.txt").write_bytes(content)
    assert_user_error(train(tmp_path, tmp_path / "c.txt"), "is empty")


def test_wrong_encoding_names_the_encoding_and_the_fix(tmp_path):
    (tmp_path / "c.txt").write_bytes("\n".join(TINY_LINES * 30).encode("gbk"))
    assert_user_error(train(tmp_path, tmp_path / "c.txt"), "not valid utf-8", "data.encoding=")
    ok = train(tmp_path, tmp_path / "c.txt", "data.encoding=gbk", "+trainer.fast_dev_run=true")
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_binary_data(tmp_path):
    (tmp_path / "c.txt").write_bytes(os.urandom(4096) + b"\x00" * 16)
    assert_user_error(train(tmp_path, tmp_path / "c.txt"), "binary")


def test_corpus_too_short_says_how_many_tokens(tmp_path):
    (tmp_path / "c.txt").write_text("星星\n月亮\n", encoding="utf-8")
    assert_user_error(
        train(tmp_path, tmp_path / "c.txt"), "too short: 4 tokens", "needs at least data.seq_len + 1 = 33"
    )


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("data.seq_len=0", "data.seq_len"),
        ("data.batch_size=-2", "data.batch_size"),
        ("data.min_freq=0", "data.min_freq"),
        ("data.val_fraction=1.5", "data.val_fraction"),
    ],
)
def test_data_settings_out_of_range(tmp_path, tiny_corpus, override, fragment):
    assert_user_error(train(tmp_path, tiny_corpus, override), fragment)


def test_jaychou_download_failure_and_checksum_mismatch(tmp_path):
    dest = tmp_path / "data" / "jaychou_lyrics.txt.zip"
    base = ["data=jaychou", f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}"]
    failed = run_script("train", *base, "data.url=http://127.0.0.1:9/jaychou_lyrics.txt.zip")
    assert_user_error(failed, "could not download", f"put it at {dest}")
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("jaychou_lyrics.txt", "不是周杰伦\n")
    mismatch = run_script("train", *base, f"data.url={wrong.as_uri()}")
    assert_user_error(mismatch, "has sha256", "expected 3cfedd7d", f"put it at {dest}")
    assert not dest.exists()  # nothing half-downloaded is left to be mistaken for the corpus


# --- generation -----------------------------------------------------------------------------------


def test_generation_bad_checkpoints(tmp_path):
    assert_user_error(run_script("generate", f"ckpt_path={tmp_path / 'missing.ckpt'}"), "does not exist", "ckpt_path")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(random.Random(0).randbytes(2048))
    assert_user_error(run_script("generate", f"ckpt_path={junk}"), "not a readable PyTorch checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 1}, foreign)
    assert_user_error(run_script("generate", f"ckpt_path={foreign}"), "not a lyricgen checkpoint")
    assert_user_error(run_script("generate", f"runs_dir={tmp_path / 'no-runs'}"), "no training run found")


def test_any_random_file_is_refused_as_unreadable(tmp_path):
    # torch.load fails on arbitrary bytes with many exception types (IndexError, KeyError, ...).
    from lyricgen.checkpoint import load_checkpoint
    from lyricgen.errors import LyricgenError

    for seed in range(200):
        path = tmp_path / f"{seed}.ckpt"
        path.write_bytes(random.Random(seed).randbytes(random.Random(seed).randint(0, 4096)))
        with pytest.raises(LyricgenError, match="not a readable PyTorch checkpoint|not a lyricgen checkpoint"):
            load_checkpoint(path)


# --- interruption, resume, caches ----------------------------------------------------------------


def test_ctrl_c_leaves_a_last_checkpoint_that_generates_and_resumes(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        # more epochs than any machine runs before the signal: Ctrl-C, not the epoch count, must end it
        *tiny_overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1000000"),
        f"hydra.run.dir={run_dir}",
        # EarlyStopping's state (patience, wait count) is restored on resume: the step count must end it
        "callbacks.early_stopping.patience=1000000",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible
    )
    deadline = time.monotonic() + 120
    while not list((run_dir / "checkpoints").glob("best-*.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until training is under way (an epoch has been validated)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert "Traceback" not in out, out[-3000:]
    assert "💡" not in out and "LeafSpec" not in out and "GPU available" in out  # no tips or library warnings
    last = run_dir / "checkpoints" / "last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert step > 0
    assert not list(last.parent.glob(".*"))  # written through the atomic writer: no temporary file left

    gen = run_script("generate", f"ckpt_path={last}", "start_word=星星", "lines=2", "seed=0")
    assert gen.returncode == 0 and gen.stdout.startswith("星星"), gen.stderr[-2000:]

    resumed_dir = tmp_path / "resumed"
    resumed = run_script(
        "train",
        *tiny_overrides(tiny_corpus, tmp_path),
        f"hydra.run.dir={resumed_dir}",
        f"ckpt_path={last}",
        "trainer.max_epochs=1000",
        "+trainer.max_steps=" + str(step + 20),
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((resumed_dir / "results.json").read_text())["global_step"] == step + 20  # counted on
    assert "Restoring states from the checkpoint" in resumed.stdout + resumed.stderr  # optimizer, loops, ...
    after = torch.load(resumed_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert after["global_step"] > step and after["optimizer_states"][0]["state"]


def test_a_training_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path, tiny_corpus):
    from lyricgen.checkpoint import load_checkpoint

    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    endless = ("trainer.max_epochs=1000000", "callbacks.early_stopping.patience=1000000")
    overrides = quick_overrides(tiny_corpus, tmp_path, *endless)
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *overrides, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (checkpoints / "last.ckpt").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first epoch's checkpoints are written
    deadline = time.monotonic() + 3
    while not list(checkpoints.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.001)  # kill it while it writes a checkpoint, if the poll sees one
    proc.kill()
    proc.wait(timeout=30)
    for ckpt in checkpoints.glob("*.ckpt"):  # under its name, a checkpoint is whole (a kill may leave a .tmp)
        load_checkpoint(ckpt)
    assert all(p.name.startswith(".") and p.suffix == ".tmp" for p in checkpoints.iterdir() if p.suffix != ".ckpt")
    assert_resumes(tiny_corpus, tmp_path, run_dir)  # one more epoch, in the same run directory


def test_resume_refuses_a_checkpoint_of_other_data(tmp_path, trained_run):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(["完全不同的歌词", "另外一首歌"] * 50), encoding="utf-8")
    result = run_script(
        "train",
        *tiny_overrides(other, tmp_path),
        f"hydra.run.dir={tmp_path / 'run'}",
        f"ckpt_path={best_checkpoint(trained_run)}",
    )
    assert_user_error(result, "vocabulary of the checkpoint", "does not match this data")


def test_two_runs_at_once_keep_their_own_directories_and_cache(tmp_path, tiny_corpus):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        *tiny_overrides(tiny_corpus, tmp_path, "trainer.max_epochs=2"),
    ]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    runs = sorted(p.parent.parent for p in (tmp_path / "outputs").glob("*/*/checkpoints/last.ckpt"))
    assert len(runs) == 2 and runs[0] != runs[1]
    (cache,) = (tmp_path / "data" / "cache").glob("tokens-*")
    assert not list((tmp_path / "data" / "cache").glob(".*"))  # no temporary folder left behind
    key = json.loads((cache / "meta.json").read_text(encoding="utf-8"))["key"]
    saved = TokenizedCorpus.load(cache, key)  # whole, not torn: every file matches its sha256
    songs, _ = read_songs(tiny_corpus)
    expected = [tok for song in songs for line in song for tok in (*JiebaTokenizer().tokenize_line(line), "\n")]
    assert saved.tokens(0, None) == expected  # this corpus
    assert Vocab.load(runs[0] / "vocab.json") == Vocab.load(runs[1] / "vocab.json")  # both read the same tokens
    for run in runs:  # each run made the cache or read it
        log = (run / "train.log").read_text(encoding="utf-8")
        assert "Tokenised corpus cached in" in log or "mapped from cache" in log, log[-2000:]


# --- bad values: one line, exit code 2, through the real entry points --------------------------------


def gen(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run_script("generate", *args, cwd=tmp_path)


def test_wrong_types_are_refused_with_what_the_option_takes(tmp_path, tiny_corpus):
    assert_user_error(
        gen(tmp_path, "length=abc"), "length='abc' is not an integer", "length takes an integer >= 0", "e.g. length=100"
    )
    assert_user_error(
        train(tmp_path, tiny_corpus, "data.seq_len=abc"),
        "data.seq_len='abc' is not an integer",
        "data.seq_len takes an integer >= 1",
    )


def test_values_out_of_range_are_refused_with_the_range(tmp_path, tiny_corpus):
    assert_user_error(gen(tmp_path, "temperature=-1"), "temperature=-1 is out of range", "a number > 0")
    assert_user_error(gen(tmp_path, f"seed={2**70}"), f"seed={2**70} is out of range", "64 bits")
    assert_user_error(gen(tmp_path, "seed=-1"), "seed=-1 is out of range")
    assert_user_error(
        train(tmp_path, tiny_corpus, f"seed={2**40}"), f"seed={2**40} is out of range", "in [0, 4294967295]", "32 bits"
    )
    assert_user_error(
        train(tmp_path, tiny_corpus, "trainer.max_epochs=-3"),
        "trainer.max_epochs=-3 is out of range",
        "an integer >= -1",
        "e.g. trainer.max_epochs=",
    )


def test_requests_that_cannot_fit_in_memory_are_refused_before_allocating(tmp_path, tiny_corpus, trained_run):
    ckpt = f"ckpt_path={best_checkpoint(trained_run)}"
    assert_user_error(
        gen(tmp_path, ckpt, "num_samples=100000000"), "num_samples=100000000 needs about", "lower num_samples"
    )
    assert_user_error(gen(tmp_path, ckpt, "length=100000000000"), "length=100000000000", "lower length")
    assert_user_error(
        train(tmp_path, tiny_corpus, "model.hidden_size=10000000"),
        "model.hidden_size=10000000",
        "lower model.hidden_size",
    )
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training


@pytest.mark.skipif(CUDAAccelerator.is_available(), reason="this machine has a GPU")
def test_accelerators_that_are_not_there_are_refused_with_what_is(tmp_path, tiny_corpus):
    assert_user_error(gen(tmp_path, "device=cuda"), "device=cuda", "no CUDA GPU", "use device=cpu")
    gpu = train(tmp_path, tiny_corpus, "trainer=gpu", "trainer.accelerator=gpu")
    assert_user_error(gpu, "trainer.accelerator=gpu", "no CUDA GPU", f"{os.cpu_count()} CPU cores", "use trainer=cpu")
    many = os.cpu_count() + 6
    assert_user_error(
        train(tmp_path, tiny_corpus, f"trainer.devices={many}"),
        f"trainer.devices={many} asks for {many} CPU processes",
        f"use trainer.devices={os.cpu_count()} or fewer",
    )


def test_data_text_without_a_path_is_refused_not_trained_on_jaychou(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    result = run_script("train", "data=text", f"paths.data_dir={data}", f"hydra.run.dir={run}")
    assert_user_error(result, "data.path is required", "data.path=")
    assert not data.exists() and not (run / "checkpoints").exists()  # no corpus downloaded or read, no run


def test_degenerate_set_ups_are_refused_with_the_numbers(tmp_path, tiny_corpus):
    assert_user_error(
        train(tmp_path, tiny_corpus, "data.min_freq=100000", "data.tokenizer.char_fallback=false"),
        "leaves a vocabulary of 0 words",
        "lower data.min_freq",
    )
    assert_user_error(
        train(tmp_path, tiny_corpus, "data.batch_size=50"),
        "less than one batch (data.batch_size 50 x data.seq_len 32 = 1,600 tokens)",
    )
    unseen = tmp_path / "unseen.txt"  # the validation block is words the training block never has
    lines = TINY_LINES * 35 + [f"从未见过的词语 完全陌生{i}" for i in range(40)] + TINY_LINES * 5  # 70/20/10%
    unseen.write_text("\n".join(lines), encoding="utf-8")
    assert_user_error(train(tmp_path, unseen, "data.val_fraction=0.2"), "of the validation split", "are <unk>")


def test_resuming_another_model_lists_the_differences(tmp_path, tiny_corpus, trained_run):
    result = train(tmp_path, tiny_corpus, f"ckpt_path={best_checkpoint(trained_run)}", "model=gru", "model.emb_dim=16")
    assert_user_error(
        result,
        "holds another model",
        "model.cell=rnn in the checkpoint, gru here",
        "model.emb_dim=32 in the checkpoint, 16 here",
    )


# --- issue 22: Trainer values, corpora and checkpoints of new kinds --------------------------------


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("trainer.devices=abc", "trainer.devices='abc' is not a number of devices"),
        ("trainer.strategy=foo", "trainer.strategy='foo' is not a strategy Lightning knows"),
        ("trainer.precision=17", "trainer.precision=17 is not one of the choices"),
        ("++trainer.max_step=1", "did you mean trainer.max_steps"),
        ("trainer.strategy=deepspeed", "DeepSpeed"),
        ("trainer.num_nodes=0", "trainer.num_nodes=0 is out of range"),
    ],
)
def test_trainer_values_are_refused_before_any_data_work(tmp_path, override, fragment):
    # The corpus does not exist: the Trainer's refusal must come first, before the data is touched.
    assert_user_error(train(tmp_path, tmp_path / "not-read.txt", override), fragment)


def test_bf16_true_trains_and_samples(tmp_path, tiny_corpus):
    ok = train(tmp_path, tiny_corpus, "trainer.precision=bf16-true", "model.softmax=adaptive", "+trainer.max_steps=2")
    assert ok.returncode == 0, ok.stderr[-3000:]


def test_utf16_corpus_names_the_encoding(tmp_path):
    (tmp_path / "c.txt").write_bytes("\n".join(TINY_LINES * 30).encode("utf-16"))
    assert_user_error(train(tmp_path, tmp_path / "c.txt"), "UTF-16", "data.encoding=utf-16")


def test_one_huge_line_says_to_break_it_into_lines(tmp_path):
    (tmp_path / "c.txt").write_text(" ".join(TINY_LINES * 400), encoding="utf-8")
    assert_user_error(train(tmp_path, tmp_path / "c.txt"), "has 1 line for", "break the text into lines")


def test_checkpoints_that_are_folders_truncated_or_built_to_run_code(tmp_path, trained_run):
    import pickle

    marker = tmp_path / "code-ran"
    torch.save({"state_dict": RunsCode(marker)}, tmp_path / "zip.ckpt")
    (tmp_path / "pickle.ckpt").write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    good = best_checkpoint(trained_run).read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(good[: len(good) // 2])
    (tmp_path / "dir.ckpt").mkdir()
    cases = {"zip": "never unpickles", "pickle": "never unpickles", "cut": "truncated", "dir": "is a folder"}
    for name, fragment in cases.items():
        path = tmp_path / f"{name}.ckpt"
        assert_user_error(run_script("generate", f"ckpt_path={path}"), fragment)
        if name in ("zip", "pickle"):  # evaluate.py loads through the same function: the code-running ones again
            assert_user_error(run_script("evaluate", f"ckpt_path={path}", "cache=none"), fragment)
        run_dir_fragment = "holds no checkpoints" if name == "dir" else fragment  # init_from takes run folders
        overrides = [*tiny_overrides(tmp_path / "unused.txt", tmp_path), f"init_from={path}"]
        with pytest.raises(LyricgenError, match=run_dir_fragment):  # in-process: refused before any data is read
            train_in_process(overrides, tmp_path / f"run-{name}")
    assert not marker.exists()


def test_ctrl_c_during_generation_exits_at_once_without_a_traceback(trained_run):
    ckpt = best_checkpoint(trained_run)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), f"ckpt_path={ckpt}", "length=5000000", "num_samples=8"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # as in a terminal
    )
    time.sleep(8)  # loaded and generating
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err


# --- two trainings, one run directory; a cache folder that cannot be written ---------------------------


def test_a_second_training_in_a_run_directory_that_one_is_writing_into_stops_and_changes_nothing(tmp_path, tiny_corpus):
    from filelock import FileLock

    run = tmp_path / "run"
    first = train(tmp_path, tiny_corpus, "++trainer.max_steps=2")  # a finished run: its directory may be reused
    assert first.returncode == 0, first.stderr[-2000:]
    made = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".train.lock"}
    assert any(p.suffix == ".ckpt" for p in made) and run / ".hydra" / "overrides.yaml" in made
    with FileLock(run / ".train.lock"):  # what a training still running holds
        second = train(tmp_path, tiny_corpus, "trainer.max_epochs=1")
    assert_user_error(second, "another training is running in", str(run), "hydra.run.dir=")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".train.lock"}
    assert after == made  # its config, log, checkpoints and results untouched


def test_a_cache_folder_that_cannot_be_written_is_said_and_the_run_goes_on(tmp_path, tiny_corpus):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    result = train(tmp_path, tiny_corpus, f"data.cache_dir={blocked / 'cache'}", "++trainer.max_steps=1")
    assert result.returncode == 0, result.stderr[-2000:]
    said = result.stdout + result.stderr  # (the log goes to stdout)
    assert "Token cache not written" in said and "data.cache_dir" in said
    assert "Traceback" not in said and blocked.read_text() == "not a folder"
    assert (tmp_path / "run" / "results.json").is_file()


@pytest.mark.parametrize(
    "target", ["builtins.open", "lyricgen.checkpoint.torch.load", "lyricgen.config.check_config"]
)  # a builtin, what lyricgen imports (torch's loader under a lyricgen name), a lyricgen function
def test_evaluate_never_calls_what_a_run_config_names_beyond_lyricgen_classes(tmp_path, trained_run, target):
    import shutil

    run, marker = tmp_path / "run", tmp_path / "config-code-ran"
    shutil.copytree(trained_run, run)
    (run / ".hydra" / "config.yaml").write_text(f"data:\n  _target_: {target}\n  _args_: ['{marker}', 'w']\n")
    result = run_script("evaluate", f"ckpt_path={best_checkpoint(run)}")
    assert_user_error(result, target, "not a lyricgen class")
    assert not marker.exists()
