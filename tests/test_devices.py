"""What the machine has, found out once (lyricgen.devices): training's accelerator checks and generation's
device agree, on this machine and on machines simulated by replacing `machine()`."""

from __future__ import annotations

import os

import pytest
import torch

from lyricgen import config, devices
from lyricgen.errors import LyricgenError


@pytest.fixture
def machine(monkeypatch):
    """Simulate a machine: `machine(gpus, mps)`."""

    def simulate(gpus: int, mps: bool) -> None:
        monkeypatch.setattr(devices, "machine", lambda: (gpus, mps))

    return simulate


def test_the_config_checks_and_generation_share_one_detection():
    assert config.check_accelerator is devices.check_accelerator and config.pick_device is devices.pick_device


def test_two_gpus(machine):
    machine(2, False)
    assert devices.training_device("auto") == "cuda" and devices.pick_device("auto") == torch.device("cuda")
    assert devices.pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(LyricgenError, match="trainer.devices=3 asks for 3 CUDA GPUs but this machine has 2 CUDA GPUs"):
        devices.check_accelerator("gpu", 3)
    with pytest.raises(LyricgenError, match="device=cuda:2 but this machine has 2 CUDA GPUs"):
        devices.pick_device("cuda:2")
    with pytest.raises(LyricgenError, match="device=mps but this machine has no Apple GPU"):
        devices.pick_device("mps")


def test_an_apple_gpu(machine):
    machine(0, True)
    assert devices.training_device("auto") == devices.training_device("gpu") == "mps"
    assert devices.check_accelerator("mps", 1) == "mps" and devices.pick_device("mps") == torch.device("mps")
    assert devices.pick_device("auto") == torch.device("cpu")  # generation picks a CUDA GPU or the CPU
    with pytest.raises(LyricgenError, match="trainer.devices=2 asks for 2 Apple GPUs"):
        devices.check_accelerator("mps", 2)
    with pytest.raises(LyricgenError, match="no CUDA GPU, an Apple GPU \\(mps\\)"):
        devices.check_accelerator("cuda", 1)


def test_the_cpu_alone(machine):
    machine(0, False)
    assert devices.training_device("auto") == "cpu" and devices.pick_device("auto") == torch.device("cpu")
    with pytest.raises(LyricgenError, match="asks for an Apple GPU but this machine has no CUDA GPU and"):
        devices.check_accelerator("mps", 1, "")
    cores = os.cpu_count()
    with pytest.raises(LyricgenError, match=f"use trainer.devices={cores} or fewer"):
        devices.check_accelerator("cpu", cores + 1)
    for bad in ("cuda", "tpu", "nonsense"):
        with pytest.raises(LyricgenError, match="device="):
            devices.pick_device(bad)
