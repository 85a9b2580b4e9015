"""Checkpoints that survive a disk that fills up while one is written: the previous ones stay whole and load, no
temporary file is left, the run ends in one line that says what to do, and it resumes once there is space; a
token cache that meets a full disk is not written, and the run goes on. (A kill -9 and Ctrl-C are in
test_reliability.py; a cache cut short is rebuilt in test_corpus.py.)"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.utils import instantiate

import lyricgen.files
from lyricgen.checkpoint import load_checkpoint
from lyricgen.checkpoint_io import AtomicCheckpointIO
from lyricgen.cli import user_errors
from tests.conftest import ROOT, TINY_LINES, assert_resumes, compose_train, quick_overrides, train_in_process


def disk_full_line(name: str, last: Path) -> str:
    """The line a run ends with when the disk fills up while checkpoint `name` is written beside `last`."""
    return (
        f"error: the disk is full (No space left on device): checkpoint {name} was not written, and the run stopped; "
        f"the checkpoints in {last.parent} written before it are whole. Free some space there, then resume with "
        f"ckpt_path={last}"
    )


def assert_whole(folder: Path) -> int:
    """Every checkpoint in `folder` loads and nothing else is there; the global step of its last.ckpt."""
    assert [p.name for p in folder.iterdir() if p.suffix != ".ckpt"] == []  # no temporary file left
    for path in folder.glob("*.ckpt"):
        load_checkpoint(path)  # a LyricgenError if it is cut short
    return load_checkpoint(folder / "last.ckpt")["global_step"]


class _FillsHalfWay:
    """A file on a disk that fills up as it is written: it takes half of the bytes, then fails with ENOSPC."""

    def __init__(self, file) -> None:
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, data) -> int:
        self.file.write(bytes(data[: len(data) // 2]))
        self.file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_write_that_fails_half_way_keeps_the_last_checkpoint_and_ends_in_one_line(
    tmp_path, tiny_corpus, monkeypatch, capfd
):
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    real_open, writes, before = open, [], {}

    def open_(path, *args, **kwargs):  # the second write of last.ckpt fills the disk half-way through
        file = real_open(path, *args, **kwargs)
        if Path(path).name.startswith(".last.ckpt."):
            writes.append(path)
            if len(writes) == 2:
                before["last.ckpt"] = last.read_bytes()
                return _FillsHalfWay(file)
        return file

    monkeypatch.setattr(lyricgen.files, "open", open_, raising=False)
    with pytest.raises(SystemExit) as stop, user_errors():  # as scripts/train.py runs train()
        train_in_process(quick_overrides(tiny_corpus, tmp_path, "trainer.max_epochs=3"), run)
    err = capfd.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == disk_full_line("last.ckpt", last)
    assert last.read_bytes() == before["last.ckpt"]  # the previous one, untouched until the new one is whole
    assert assert_whole(last.parent) > 0
    monkeypatch.undo()  # space again
    assert_resumes(tiny_corpus, tmp_path, run)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 24 MB tmpfs (root on Linux); skipped, with the reason, where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: the patched write tests the same fault")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the patched write tests the same fault")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_run_whose_disk_fills_up_stops_in_one_line_and_resumes_once_there_is_space(tmp_path, tiny_corpus, small_disk):
    run = small_disk / "run"
    last = run / "checkpoints" / "last.ckpt"
    endless = ("trainer.max_epochs=100000", "callbacks.early_stopping.patience=100000")
    output = tmp_path / "output.txt"  # stdout and stderr, in the order a terminal shows them (a file: a pipe
    with open(output, "w") as out:  # that the child filled would block it)
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "train.py"), *quick_overrides(tiny_corpus, tmp_path, *endless)]
            + [f"hydra.run.dir={run}"],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # until the first epoch's checkpoints are written
        proc.send_signal(signal.SIGSTOP)
        stat = os.statvfs(small_disk)  # fill the disk but for half a checkpoint
        (small_disk / "filler").write_bytes(bytes(stat.f_bavail * stat.f_frsize - last.stat().st_size // 2))
        proc.send_signal(signal.SIGCONT)
        proc.wait(timeout=120)
    said = output.read_text(encoding="utf-8")
    assert proc.returncode == 2 and "Traceback" not in said, said[-3000:]
    line = said.rstrip("\n").split("\n")[-1]  # the last line, on a line of its own: no progress bar before or after
    name = line.split(" checkpoint ")[-1].split(" was not written")[0]  # the epoch's best or last one
    assert line == disk_full_line(name, last) and name.endswith(".ckpt"), said[-3000:]
    assert assert_whole(last.parent) > 0
    (small_disk / "filler").unlink()  # space freed, as the line says
    assert_resumes(tiny_corpus, tmp_path, run)


def test_a_token_cache_that_meets_a_full_disk_is_not_written_and_the_next_run_writes_it(small_disk, caplog):
    from lyricgen.data.corpus import TokenizedCorpus, cache_key, load_or_tokenize
    from lyricgen.data.tokenizer import CharTokenizer

    songs = [[line] for line in TINY_LINES * 500]  # 16,000 characters: more than the 4 KB left
    stat = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(bytes(stat.f_bavail * stat.f_frsize - 4096))
    corpus = load_or_tokenize(lambda: songs, CharTokenizer(), "abc", small_disk / "cache")
    assert corpus.tokens(0, 8) == list("星星在天上闪烁\n") and "Token cache not written" in caplog.text
    assert [p.name for p in (small_disk / "cache").iterdir() if not p.name.endswith(".lock")] == []  # nothing cut
    (small_disk / "filler").unlink()
    load_or_tokenize(lambda: songs, CharTokenizer(), "abc", small_disk / "cache")
    (folder,) = (small_disk / "cache").glob("tokens-*[!k]")
    assert TokenizedCorpus.load(folder, cache_key("abc", CharTokenizer())).tokens(0, None) == corpus.tokens(0, None)


@pytest.mark.parametrize("trainer", ["default", "cpu", "ddp"])
def test_every_trainer_config_writes_checkpoints_through_the_atomic_writer(tmp_path, trainer):
    """ModelCheckpoint's files and Ctrl-C's last.ckpt (CheckpointOnInterrupt) go through trainer.save_checkpoint."""
    built = instantiate(compose_train([f"trainer={trainer}", "trainer.accelerator=cpu"], tmp_path).trainer)
    assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO)
