"""The laptops learners use: macOS (CPU and Apple's GPU) and Windows.

The end-to-end tests run the README's commands on Linux and, in the same test, under a simulation of macOS
and of Windows (`tests/simulate/sitecustomize.py`: no /proc, os.sysconf as each system has it, no fcntl on
Windows, processes started with spawn, and a C locale in which redirected output and files opened without
an encoding are ASCII), and demand the same output for the same seed. Apple's GPU cannot be simulated: its
decisions (start-up checks, memory figure, precisions, devices) are tested with torch's device functions
patched. Tests marked `portable` also run inside the simulation in CI (.ci/run: `-m portable`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lyricgen.errors import LyricgenError
from tests.conftest import ROOT, TINY_LINES, best_checkpoint, interruptible, tiny_overrides

SYSTEMS = ("linux", "macos", "windows")
SIMULATE = ROOT / "tests" / "simulate"
JAYCHOU = ROOT / "data" / "jaychou_lyrics.txt.zip"


def system_env(system: str) -> dict[str, str]:
    """The environment of a process on `system`: this one's for linux; else the simulation's, with a C locale
    and no PYTHONIOENCODING, so that output that is not written as UTF-8 on purpose would fail."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG", "LANGUAGE")}
    env.update(PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="0")
    if system != "linux":
        paths = [str(SIMULATE), env.get("PYTHONPATH", "")]
        env.update(PYTHONPATH=os.pathsep.join(p for p in paths if p), LYRICGEN_SIMULATE=system)
        env.update(LC_ALL="C", PYTHONUTF8="0")
    return env


def run_as(system: str, script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """scripts/<script>.py (or `-c CODE` for script "-c") as a user of `system` runs it; output as bytes."""
    cmd = (
        [sys.executable, "-c", args[0], *args[1:]]
        if script == "-c"
        else [sys.executable, f"scripts/{script}.py", *args]
    )
    return subprocess.run(cmd, cwd=ROOT, env=system_env(system), capture_output=True, timeout=timeout)


def text(result: subprocess.CompletedProcess, system: str) -> str:
    """Its stdout, which must be UTF-8 (on every system), after it ended well without a traceback."""
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, (system, err[-3000:])
    assert b"Traceback" not in result.stderr, (system, err[-3000:])
    return result.stdout.decode("utf-8")  # strict: the locale's ASCII would have failed before


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The README's main command (a few batches of it), once on each system, each with its own data folder."""
    if not JAYCHOU.is_file():
        pytest.skip(f"{JAYCHOU} is not here (CI copies it from ../shared/data; tests never download)")
    base = tmp_path_factory.mktemp("systems")
    out = {}
    for system in SYSTEMS:
        data = base / system / "data"
        data.mkdir(parents=True)
        shutil.copy(JAYCHOU, data)
        run = base / system / "run"
        result = run_as(
            system,
            "train",
            "model=rnn",
            "data=jaychou",  # the README's command, on a few batches, its samples fewer
            f"paths.data_dir={data}",
            f"hydra.run.dir={run}",
            "data.tokenize_workers=2",  # two processes even on one core: the pool starts with spawn
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=6",
            "+trainer.limit_val_batches=4",
            "trainer.num_sanity_val_steps=0",
            "callbacks.lyrics_metrics.decoding.num_samples=4",
            "callbacks.sample_lyrics_form=null",
            "cache=none",
        )
        log = text(result, system) + result.stderr.decode("utf-8", "replace")
        assert "Memory check skipped" not in log, (system, log[-2000:])  # a figure on every system
        assert "Tokenising" in log and "with 2 processes" in log, log[-2000:]
        out[system] = run
    return out


def _figures(run: Path) -> dict:
    result = json.loads((run / "results.json").read_text(encoding="utf-8"))
    return {k: v for k, v in result.items() if not k.startswith(("phase_", "wall_s", "best_ckpt"))}


# Two processes that run the same float32 arithmetic may still differ in its last bit: the CPU's matrix
# kernels pick their paths by how the memory they are given happens to be aligned (seen in CI: test ppl
# 1858.0560 on one system, 1858.0569 on another, with every other figure the same). "The same figure" is
# therefore the same to float32's precision, with room for a few ulps of a loss that ppl = exp(loss)
# turns into relative error: ten parts in a million.
FLOAT32 = 1e-5
NUMBER = re.compile(r"-?\d+\.\d+")


def _same_figures(got: dict, want: dict) -> bool:
    """The same keys and values, floats equal to float32's precision."""
    return got.keys() == want.keys() and all(
        got[k] == pytest.approx(v, rel=FLOAT32) if isinstance(v, float) else got[k] == v for k, v in want.items()
    )


def _same_text(got: str, want: str) -> bool:
    """The same text, its decimals equal to within one unit of the last digit printed (a figure that lies
    on a rounding boundary may print as either neighbour)."""
    if NUMBER.split(got) != NUMBER.split(want):
        return False
    numbers = list(zip(NUMBER.findall(got), NUMBER.findall(want)))
    return all(len(a) == len(b) and abs(float(a) - float(b)) <= 1.01 * 10 ** -len(a.split(".")[1]) for a, b in numbers)


def test_figures_printed_by_two_processes_agree_to_float32s_precision():
    assert _same_figures({"ppl": 1858.0560302734375, "n": 6}, {"ppl": 1858.056884765625, "n": 6})
    assert not _same_figures({"ppl": 1858.1, "n": 6}, {"ppl": 1858.056884765625, "n": 6})
    assert not _same_figures({"ppl": 1858.056, "n": 7}, {"ppl": 1858.056, "n": 6})
    assert _same_text("| test/ppl | 1858.056 |", "| test/ppl | 1858.057 |")
    assert not _same_text("| test/ppl | 1858.055 |", "| test/ppl | 1858.057 |")
    assert not _same_text("| test/bpc | 1858.056 |", "| test/ppl | 1858.056 |")


def test_training_gives_the_same_figures_on_every_system(runs):
    linux = _figures(runs["linux"])
    assert "test_ppl" in linux and "best_val_ppl" in linux
    for system in ("macos", "windows"):
        assert _same_figures(_figures(runs[system]), linux), (system, _figures(runs[system]), linux)
        log = (runs[system] / "train.log").read_text(encoding="utf-8")
        assert "Test (best checkpoint)" in log  # the run's log, written as UTF-8 in a C locale


def test_generate_writes_the_same_lyrics_on_every_system(runs):
    out = {
        s: text(run_as(s, "generate", f"ckpt_path={best_checkpoint(runs[s])}", "start_word=星星", "seed=1"), s)
        for s in SYSTEMS
    }
    assert out["linux"].startswith("星星") and out["macos"] == out["linux"] == out["windows"]


def test_evaluate_and_the_critic_read_the_same_on_every_system(runs, tmp_path):
    lyrics = tmp_path / "mine.txt"
    lyrics.write_text("星星在天上闪烁\n我爱你到永远\n", encoding="utf-8")
    tables = {}
    for s in SYSTEMS:
        ckpt = best_checkpoint(runs[s])
        evaluated = text(run_as(s, "evaluate", f"ckpt_path={ckpt}", "num_samples=3", "cache=none", "tunes=0"), s)
        critic = text(run_as(s, "critic", f"ckpt_path={ckpt}", f"path={lyrics}"), s)
        tables[s] = (evaluated.replace(str(ckpt), "CKPT"), critic)
    assert "test/ppl" in tables["linux"][0] and "perplexity:" in tables["linux"][1]
    for system in ("macos", "windows"):
        for got, want in zip(tables[system], tables["linux"]):
            assert _same_text(got, want), (system, got, want)


PAGE = """
import sys
from lyricgen.app.models import Models
from lyricgen.app.page import LyricsPage
from lyricgen.cli import utf8_output
utf8_output()
models = Models(sys.argv[1])
models.load(sys.argv[2])
lyrics, rows, measures = LyricsPage(models).generate("\\u661f\\u661f", lines=4, seed=3, rhyme="AABB")
print(lyrics)
"""


def test_the_pages_generate_call_writes_the_same_lyrics_on_every_system(runs):
    pytest.importorskip("gradio", reason="the page needs the app extra: pip install -e '.[app]'")
    out = {s: text(run_as(s, "-c", PAGE, str(runs[s].parent), str(best_checkpoint(runs[s]))), s) for s in SYSTEMS}
    assert out["linux"].startswith("星星") and out["macos"] == out["linux"] == out["windows"]


def test_without_fcntl_a_second_training_in_a_run_directory_is_refused_and_ctrl_c_frees_it(tmp_path, tiny_corpus):
    run, log = tmp_path / "run", tmp_path / "first.log"
    args = [*tiny_overrides(tiny_corpus, tmp_path), f"hydra.run.dir={run}", "callbacks.lyrics_metrics=null"]
    cmd = [sys.executable, "scripts/train.py", *args, "trainer.max_epochs=100000", "callbacks.early_stopping=null"]
    with open(log, "wb") as out:  # a file, not a pipe: nobody reads it while the first training runs
        env, to = system_env("windows"), {"stdout": out, "stderr": subprocess.STDOUT}
        first = subprocess.Popen(cmd, cwd=ROOT, env=env, **to, preexec_fn=interruptible)  # Ctrl-C as in a terminal
    try:
        deadline = time.monotonic() + 120
        while not list(run.glob("checkpoints/*.ckpt")) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)  # training: its lock taken, its first checkpoint written
        second = run_as("windows", "train", *args, "trainer.max_epochs=1")
        err = second.stderr.decode("utf-8")
        assert second.returncode == 2 and "Traceback" not in err, err[-2000:]
        assert err.strip().splitlines()[-1].startswith(f"error: another training is running in {run}")
    finally:
        first.send_signal(signal.SIGINT)  # Ctrl-C
        first.wait(timeout=120)
    said = log.read_bytes().decode("utf-8")
    assert "Traceback" not in said and "Interrupted: saved" in said, said[-2000:]  # Lightning's graceful shutdown
    last = run / "checkpoints" / "last.ckpt"
    resumed = run_as("windows", "train", *args, f"ckpt_path={last}", "trainer.max_epochs=12")
    assert resumed.returncode == 0, resumed.stderr.decode("utf-8", "replace")[-2000:]  # the lock was freed


# --- what each piece does where a system lacks something (these also run inside the simulation) -----------


def test_where_no_memory_figure_can_be_had_the_check_is_skipped_with_a_log_line(monkeypatch, caplog):
    import psutil

    from lyricgen.memory import available_bytes, check_training_fits
    from lyricgen.rnnlm import NetSettings

    def unreadable():
        raise OSError("no such interface here")

    monkeypatch.setattr(psutil, "virtual_memory", unreadable)
    with caplog.at_level(logging.INFO, logger="lyricgen.memory"):
        assert available_bytes("cpu") is None
        check_training_fits(NetSettings(3000, emb_dim=8, hidden_size=8), 10**6, 10**5, "cpu")  # not refused
    assert "Memory check skipped" in caplog.text and "no such interface here" in caplog.text


@pytest.mark.portable
def test_the_token_cache_lock_and_the_tokeniser_pool_work_with_the_platforms_start_method(tmp_path):
    import multiprocessing as mp

    from lyricgen.data.corpus import load_or_tokenize, tokenize_corpus
    from lyricgen.data.tokenizer import JiebaTokenizer

    songs = [[f"{line}{i}" for i, line in enumerate(TINY_LINES * 400)]]  # more than one block: a pool of two
    alone = tokenize_corpus(songs, JiebaTokenizer(), workers=1)
    pooled = load_or_tokenize(lambda: songs, JiebaTokenizer(), "digest", tmp_path, workers=2)
    assert pooled.types == alone.types and (pooled.ids == alone.ids).all()
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.iterdir()).name]  # the cache, no lock file left
    if os.environ.get("LYRICGEN_SIMULATE"):
        assert mp.get_start_method() == "spawn"


@pytest.mark.portable
def test_output_is_utf8_whatever_the_locale(tmp_path):
    code = (
        "import sys; "
        "from lyricgen.cli import utf8_output; utf8_output(); "
        "print('\\u661f'); print('\\u6708', file=sys.stderr)"
    )
    result = run_as("windows", "-c", code)  # a C locale: ASCII, unless written as UTF-8 on purpose
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8").strip() == "星" and result.stderr.decode("utf-8").strip() == "月"


@pytest.mark.portable
def test_arguments_the_locale_could_not_decode_are_read_as_utf8():
    from lyricgen.cli import utf8_argument

    garbled = "星星".encode().decode("ascii", "surrogateescape")  # what a C locale makes of start_word=星星
    assert utf8_argument(f"start_word={garbled}") == "start_word=星星"
    assert utf8_argument("start_word=星星") == "start_word=星星"


@pytest.mark.portable
def test_local_paths_and_drive_letters_become_file_urls(tmp_path):
    from lyricgen.data.source import as_url, ensure_file, file_url, sha256_file

    src = tmp_path / "my #1 folder" / "c.txt"  # a space and a hash in the path: percent-encoded
    src.parent.mkdir()
    src.write_text("星星\n", encoding="utf-8")
    assert as_url(str(src)) == src.as_uri() and as_url(src.as_uri()) == src.as_uri()
    assert as_url("https://example.org/x.zip") == "https://example.org/x.zip"
    assert as_url("C:\\data\\x.zip").startswith("file:///")  # a drive letter is a path, not a URL scheme "c"
    assert file_url(str(src.parent), "c.txt") == src.as_uri()
    got = ensure_file(tmp_path / "copy.txt", str(src), sha256_file(src))  # data.url given as a plain path
    assert got.read_text(encoding="utf-8") == "星星\n"


# --- Apple's GPU: the decisions, with torch's device functions patched (no Metal here) ---------------------


@pytest.fixture
def a_mac(monkeypatch):
    """This machine as a Mac with Apple's GPU: 16 GB that Metal recommends, 1 GB of it held, 8 GB free RAM."""
    import platform

    import psutil

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(platform, "processor", lambda: "arm")  # Apple silicon
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: (14, 0) >= (major, minor))
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 16 * 10**9)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 1 * 10**9)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 8 * 10**9})())


def test_on_a_mac_auto_trains_on_apple_gpu_and_its_memory_is_metals_within_the_ram(a_mac):
    from lyricgen.devices import check_accelerator, training_device
    from lyricgen.memory import available_bytes

    assert training_device("auto") == "mps" and check_accelerator("mps", 1) == "mps"
    assert check_accelerator("auto", "auto") == "mps"
    assert available_bytes("mps") == 8 * 10**9  # min(16 - 1 GB of Metal, 8 GB of RAM)


def test_on_a_mac_the_training_checks_pass_and_refuse_what_metal_cannot_do(a_mac, monkeypatch, tmp_path, tiny_corpus):
    from lyricgen.config import check_config
    from tests.conftest import compose_train

    def checked(*extra):
        check_config(compose_train([*tiny_overrides(tiny_corpus, tmp_path), *extra], tmp_path), "train")

    checked("trainer.accelerator=mps")
    checked("trainer.accelerator=auto", "trainer.precision=bf16-mixed")  # macOS 14 here
    checked("trainer.accelerator=mps", "trainer.precision=16-mixed")
    with pytest.raises(LyricgenError, match="no float64; use trainer.precision=32-true"):
        checked("trainer.accelerator=mps", "trainer.precision=64-true")
    with pytest.raises(LyricgenError, match="bfloat16 on Apple's GPU .* needs macOS 14"):
        monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: False)  # macOS 13
        checked("trainer.accelerator=mps", "trainer.precision=bf16-mixed")


def test_on_a_mac_a_model_too_big_for_metal_is_refused_and_generation_takes_device_mps(a_mac):
    from lyricgen.devices import pick_device
    from lyricgen.memory import check_decoding_fits, check_training_fits
    from lyricgen.rnnlm import NetSettings

    big = NetSettings(200_000, emb_dim=4096, hidden_size=4096, num_layers=4)
    with pytest.raises(LyricgenError, match="free on mps; lower model.hidden_size"):
        check_training_fits(big, 32, 35, "mps")
    with pytest.raises(LyricgenError, match="free on mps; lower num_samples"):
        check_decoding_fits(big, 10**5, 100, 1, "mps")
    assert pick_device("mps") == torch.device("mps")
    assert pick_device("auto") == torch.device("cpu")  # decoding on the CPU: the same lyrics as on Linux


def test_on_a_mac_the_scripts_let_an_op_metal_lacks_fall_back_to_the_cpu(monkeypatch):
    from lyricgen import cli

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(sys, "argv", ["generate.py"])
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    cli.start_script(str(ROOT / "scripts" / "generate.py"), "generate")
    assert os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"
