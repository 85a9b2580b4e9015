"""Shared fixtures: a tiny repetitive corpus and the real Hydra config composed on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

# Four lines sung over and over: a model learns them in a few seconds, so a test can demand that it
# continues them exactly and that the loss really falls.
TINY_LINES = ["星星在天上闪烁", "我爱你到永远", "月亮照着我们的家", "风吹过安静的夜晚"]


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(TINY_LINES * 30) + "\n", encoding="utf-8")
    return path


def tiny_overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    """Overrides that train a small model on `corpus` quickly, writing into `out`."""
    return [
        "data=text",
        f"data.path={corpus}",
        f"paths.data_dir={out / 'data'}",
        "data.seq_len=32",
        "data.batch_size=2",
        "data.val_fraction=0.2",
        "model.emb_dim=32",
        "model.hidden_size=64",
        "model.dropout=0.0",
        "model.emb_dropout=0.0",
        "model.lr=0.01",
        "trainer.max_epochs=10",
        "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=1",
        *extra,
    ]


def compose_train(overrides: list[str], output_dir: Path):
    """The real train.yaml composed with overrides, with paths.output_dir set (no Hydra run here)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="train", overrides=[*overrides, f"paths.output_dir={output_dir}"])


def run_script(name: str, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run scripts/<name>.py as a user would, capturing stdout and stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train_in_process(overrides: list[str], run_dir: Path) -> dict:
    """Train through the real `train(cfg)` of scripts/train.py with the composed config, in this process (as
    lightning-hydra-template's tests do); the run directory gets Hydra's `.hydra/config.yaml` as a real run's."""
    from scripts.train import train

    cfg = compose_train(overrides, run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return train(cfg)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One training run on the tiny corpus, shared by the tests that need a checkpoint (read only)."""
    base = tmp_path_factory.mktemp("trained")
    corpus = base / "tiny.txt"
    corpus.write_text("\n".join(TINY_LINES * 30) + "\n", encoding="utf-8")
    run_dir = base / "outputs" / "2026-01-01" / "00-00-00"
    train_in_process(tiny_overrides(corpus, base, "trainer.max_epochs=20"), run_dir)
    return run_dir


def best_checkpoint(run_dir: Path) -> Path:
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    return best
