"""The data module's set-up: cold and warm, and on the corpus repeated many times against a plain jieba loop,
each in a fresh process (`python -m benchmarks.data plain|setup ...`, one JSON line); then a two-rank DDP run of
scripts/train.py on it.

Data at scale (`--scale N`, default 100): the Jay Chou corpus repeated N times in one text file. Each
measure runs in a fresh process, as a user's run would: a plain single-process `jieba.lcut` loop over its
lines (the reference), the data module's cold set-up (empty cache: tokenised on every core, cached) and
warm set-up (cache mapped), with each process's peak memory; then `scripts/train.py trainer=ddp
trainer.devices=2` on it from an empty cache, whose logs must show one tokenisation and the other rank
mapping the cache.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import Row
from lyricgen.data.corpus import usable_cpus
from lyricgen.data.datamodule import LyricsDataModule


def setup_rows(make_datamodule: Callable[[str], LyricsDataModule]) -> tuple[list[Row], LyricsDataModule]:
    """The data module's set-up from an empty cache (cold: the tokeniser runs) and again (warm: a cache hit),
    and the warm data module."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):
            dm = make_datamodule(cache)
            start = time.perf_counter()
            dm.prepare_data()
            dm.setup("fit")
            rows.append(
                (
                    f"data set-up, {label} ({'jieba runs' if label == 'cold' else 'cache hit'})",
                    f"{time.perf_counter() - start:.2f} s",
                )
            )
    return rows, dm


def peak_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child process (MB, Linux's ru_maxrss in KB)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_maxrss / 1024, children.ru_maxrss / 1024


def child_plain_jieba(path: str) -> dict:
    """The reference: one process, jieba's dictionary loaded, then `jieba.lcut` over every non-blank line."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    start = time.perf_counter()
    jieba.initialize()
    loaded = time.perf_counter()
    tokens = sum(len(jieba.lcut(line)) + 1 for line in lines)  # + the line break
    return {"dictionary_s": loaded - start, "loop_s": time.perf_counter() - loaded, "tokens": tokens}


def child_setup(path: str, cache_dir: str) -> dict:
    """The data module's set-up (prepare_data + setup) from `cache_dir`, with its peak memory."""
    before = peak_mb()[0]
    start = time.perf_counter()
    dm = LyricsDataModule(path, cache_dir=cache_dir)  # data=text's defaults: jieba, min_freq 2
    dm.prepare_data()
    dm.setup("fit")
    seconds = time.perf_counter() - start
    own, workers = peak_mb()
    return {"s": seconds, "mb_before": before, "mb": own, "workers_mb": workers, "tokens": len(dm.corpus)}


CHILD_MEASURES = {"plain": child_plain_jieba, "setup": child_setup}


def child(args: Sequence[str]) -> dict:
    """Run the measure `args[0]` ("plain" or "setup") on the arguments after it."""
    kind, *rest = args
    return CHILD_MEASURES[kind](*rest)


def in_child(*args: str) -> dict:
    """Run a measure of `CHILD_MEASURES` in a fresh Python process (`python -m benchmarks.data ...`) and
    read its JSON answer."""
    package_root = str(Path(__file__).resolve().parents[1])  # benchmarks/ is beside scripts/, not installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "benchmarks.data", *args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"the measure {' '.join(args)} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_rows(factor: int, work: Path, corpus_zip: Path, train_script: Path) -> list[Row]:
    """Set-up of a corpus `factor` times Jay Chou's (`jaychou_lyrics.txt` in `corpus_zip`), against a plain jieba
    loop; then `train_script` (scripts/train.py) with trainer=ddp on two CPU ranks on it, in folders of `work`."""
    with zipfile.ZipFile(corpus_zip) as zf:
        text = zf.read("jaychou_lyrics.txt").decode("utf-8").strip("\n")
    path = work / f"jaychou_x{factor}.txt"
    path.write_text("\n".join([text] * factor) + "\n", encoding="utf-8")
    plain = in_child("plain", str(path))
    cold = in_child("setup", str(path), str(work / "cache"))
    warm = in_child("setup", str(path), str(work / "cache"))
    size = f"{factor}x Jay Chou, {cold['tokens']:,} tokens, {path.stat().st_size / 1e6:.1f} MB"
    reference = plain["dictionary_s"] + plain["loop_s"]
    rows = [
        (
            f"plain jieba.lcut loop, one process ({size})",
            f"{reference:.2f} s ({plain['dictionary_s']:.2f} s dictionary + {plain['loop_s']:.2f} s loop)",
        ),
        (
            f"data set-up, cold ({size}; tokenised on {usable_cpus()} cores, cached)",
            f"{cold['s']:.2f} s = {cold['s'] / reference:.2f}x the plain loop "
            f"({cold['s'] / plain['loop_s']:.2f}x its loop alone)",
        ),
        (f"data set-up, warm ({size}; cache mapped)", f"{warm['s']:.2f} s"),
        (
            "peak memory of the set-up process, cold / warm (after imports)",
            f"{cold['mb']:,.0f} / {warm['mb']:,.0f} MB ({cold['mb_before']:,.0f} MB after imports); "
            f"largest tokenising worker {cold['workers_mb']:,.0f} MB",
        ),
    ]
    # DDP from an empty cache: rank 0 tokenises once before the launch, rank 1 maps the cache.
    run_dir = work / "ddp"
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, str(train_script), "data=text", f"data.path={path}",
            f"paths.data_dir={work / 'ddp-data'}", f"hydra.run.dir={run_dir}", "trainer=ddp", "trainer.devices=2",
            "trainer.accelerator=cpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=20",
            "+trainer.limit_val_batches=5", "+trainer.limit_test_batches=5", "cache=none",
            "callbacks.lyrics_metrics=null",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    logs = {p.name: p.read_text(encoding="utf-8") for p in run_dir.glob("*.log")}
    tokenised = sum(log.count("Tokenised corpus cached in") for log in logs.values())
    mapped = [name for name, log in logs.items() if "mapped from cache" in log]
    finished = done.returncode == 0 and (run_dir / "results.json").is_file()
    rows.append(
        (
            f"train.py trainer=ddp trainer.devices=2 on the {factor}x corpus (20 steps, empty cache at the start)",
            f"{'finished' if finished else f'FAILED (exit {done.returncode})'} in {wall:.0f} s; "
            f"tokenised {tokenised}x; the cache mapped in {', '.join(sorted(mapped)) or 'no log'}",
        )
    )
    return rows


if __name__ == "__main__":  # a measure in a fresh process, for `in_child`
    print(json.dumps(child(sys.argv[1:])))
