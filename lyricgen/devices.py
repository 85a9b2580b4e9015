"""What this machine has to compute on, found out once: CUDA GPUs and Apple's GPU (mps), as Lightning's
accelerators see them, without importing Lightning (generation starts without it).

`check_accelerator` refuses a Trainer's accelerator or device count that is not here (training, evaluation);
`pick_device` does the same for a torch device named by generation, the critic and the page.
"""

from __future__ import annotations

import os
import platform

from lyricgen.errors import LyricgenError


def machine() -> tuple[int, bool]:
    """(CUDA GPUs, Apple GPU): Lightning's `CUDAAccelerator.auto_device_count()` and `MPSAccelerator.is_available()`."""
    # Lightning sets this when imported, so that counting GPUs does not start CUDA in a process that forks later
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import torch

    gpus = torch.cuda.device_count()
    mps = os.getenv("DISABLE_MPS", "0") != "1" and torch.backends.mps.is_available()
    return gpus, mps and platform.processor() in ("arm", "arm64")  # Apple silicon only, as Lightning has it


def what_is_here() -> str:
    gpus, mps = machine()
    cores = os.cpu_count() or 1
    if gpus:
        return f"this machine has {gpus} CUDA GPU{'s' if gpus > 1 else ''} and {cores} CPU cores"
    return f"this machine has no CUDA GPU{', an Apple GPU (mps)' if mps else ''} and {cores} CPU cores"


def _device_count(devices) -> int | None:
    """How many devices a Trainer's `devices` asks for (None: as many as there are)."""
    if isinstance(devices, int):
        return None if devices == -1 else devices
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return None
        if text.lstrip("-").isdigit():
            return int(text)
        return len([d for d in text.split(",") if d.strip()])
    return len(list(devices))


def training_device(accelerator: str) -> str:
    """The torch device type a Trainer with this accelerator trains on here: cuda, mps or cpu."""
    gpus, mps = machine()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and gpus):
        return "cuda" if gpus or accelerator == "cuda" else "mps"
    if accelerator == "mps" or (accelerator == "auto" and mps):
        return "mps"
    return "cpu"


def check_accelerator(accelerator: str, devices, prefix: str = "trainer.") -> str:
    """Refuse an accelerator or a number of devices that this machine does not have; return the device
    type it trains on (cuda, mps or cpu)."""
    gpus, mps = machine()
    here = what_is_here()
    cpu_fix = "trainer=cpu (or trainer.accelerator=cpu)" if prefix == "trainer." else f"{prefix}accelerator=cpu"
    if accelerator == "cuda" and not gpus or accelerator == "gpu" and not (gpus or mps):
        raise LyricgenError(f"{prefix}accelerator={accelerator} asks for a GPU but {here}; use {cpu_fix}")
    if accelerator == "mps" and not mps:
        raise LyricgenError(f"{prefix}accelerator=mps asks for an Apple GPU but {here}; use {cpu_fix}")
    device = training_device(accelerator)
    wanted = _device_count(devices)
    have = {"cuda": gpus, "mps": 1}.get(device, os.cpu_count() or 1)
    unit = {"cuda": "CUDA GPUs", "mps": "Apple GPUs"}.get(device, "CPU processes")
    if wanted is not None and wanted < 1:
        raise LyricgenError(
            f"{prefix}devices={devices} is out of range; {prefix}devices takes a number >= 1, -1 (all) or auto; "
            f"e.g. {prefix}devices=1"
        )
    if wanted is not None and wanted > have:
        raise LyricgenError(
            f"{prefix}devices={devices} asks for {wanted} {unit} but {here}; use {prefix}devices={have} or fewer"
        )
    return device


def pick_device(device: str = "auto"):
    """The torch device for `device` (auto, cpu, cuda, cuda:N, mps), refused when it is not on this machine;
    auto is a CUDA GPU where there is one, else the CPU."""
    import torch

    gpus, mps = machine()
    if device == "auto":
        return torch.device("cuda" if gpus else "cpu")
    try:
        picked = torch.device(device)
    except (RuntimeError, TypeError):
        raise LyricgenError(f"device={device!r} is not a device; device takes auto, cpu, cuda or cuda:N") from None
    here = f"{gpus} CUDA GPU{'s' if gpus != 1 else ''}" if gpus else "no CUDA GPU"
    if picked.type == "cuda" and (not gpus or (picked.index or 0) >= gpus):
        raise LyricgenError(f"device={device} but this machine has {here}; use device=cpu or device=auto")
    if picked.type == "mps" and not mps:
        raise LyricgenError(f"device={device} but this machine has no Apple GPU (mps); use device=cpu or device=auto")
    if picked.type not in ("cpu", "cuda", "mps"):
        raise LyricgenError(f"device={device} is not supported here; use device=cpu, device=cuda or device=auto")
    return picked
