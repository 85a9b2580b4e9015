"""Will it fit? What a training run or a decoding request needs in memory, estimated before anything is
allocated, against what the device has free: a request that cannot fit is refused in one line that
names the options behind it, instead of failing deep inside torch (or swapping the machine to a halt)."""

from __future__ import annotations

import logging

import psutil
import torch

from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import NetSettings

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
FLOAT = 4  # bytes of a float32
STEP_COPIES = 8  # float copies of a row of logits one decoding step makes (softmax, cumsum, masks, ...)
TRAIN_COPIES = 4  # float copies of the logits in a training step (logits, log-softmax, their gradients)
ADAM_COPIES = 4  # weights, gradients and two moments per parameter

log = logging.getLogger(__name__)


def available_bytes(device: torch.device | str) -> int | None:
    """Memory free for new tensors on `device`, or None where no figure can be had (the checks are then
    skipped, with a log line): a CUDA GPU's free memory; on Apple's GPU (mps), which shares the machine's
    memory, what Metal recommends for one process less what this process's driver holds, and no more than
    the machine has available; else the machine's available memory (`psutil`: Linux, macOS, Windows)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        machine = psutil.virtual_memory().available
    except Exception as e:  # a platform psutil cannot read: no figure rather than a crash
        log.info("Memory check skipped: the free memory of this machine cannot be read (%s)", e)
        return None
    if device.type != "mps":
        return machine
    try:
        metal = torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    except (AttributeError, RuntimeError) as e:  # torch before 2.5, or no Metal device after all
        log.info("Memory check skipped: the Apple GPU's free memory cannot be read (%s)", e)
        return None
    return max(0, min(metal, machine))


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # unreachable


def net_parameters(s: NetSettings) -> int:
    """The number of parameters of `RNNLM(s)` (embedding, cell, output layer), without building it."""
    gates = GATES[s.cell]
    cell = sum(
        gates * s.hidden_size * ((s.emb_dim if i == 0 else s.hidden_size) + s.hidden_size + 2)
        for i in range(s.num_layers)
    )
    head = s.vocab_size + (0 if s.tie_weights else s.hidden_size * s.vocab_size)
    return s.vocab_size * s.emb_dim + cell + head


def check_training_fits(s: NetSettings, batch_size: int, seq_len: int, device: str) -> None:
    """Refuse a model or a batch whose training step cannot fit in the device's free memory."""
    params = net_parameters(s)
    weights = params * FLOAT * ADAM_COPIES
    tokens = batch_size * seq_len
    batch = (
        tokens * FLOAT * (TRAIN_COPIES * s.vocab_size + 4 * GATES[s.cell] * s.hidden_size * s.num_layers + s.emb_dim)
    )
    free = available_bytes(device)
    if free is None or weights + batch <= free:
        return
    if weights >= batch:
        raise LyricgenError(
            f"the model (model.cell={s.cell}, model.emb_dim={s.emb_dim}, model.hidden_size={s.hidden_size}, "
            f"model.num_layers={s.num_layers}, a vocabulary of {s.vocab_size:,} words) has {params:,} parameters: "
            f"training needs about {human(weights + batch)} for its weights, gradients and optimiser state, more "
            f"than the {human(free)} free on {device}; lower model.hidden_size, model.emb_dim or model.num_layers"
        )
    raise LyricgenError(
        f"a batch of data.batch_size={batch_size} x data.seq_len={seq_len} tokens with a vocabulary of "
        f"{s.vocab_size:,} words needs about {human(weights + batch)} to train (its logits and their gradients), "
        f"more than the {human(free)} free on {device}; lower data.batch_size or data.seq_len"
    )


def check_decoding_fits(
    s: NetSettings, num_samples: int, length: int | None, rows_per_sample: int, device: torch.device | str
) -> None:
    """Refuse a decoding request whose buffers cannot fit: `num_samples` x `rows_per_sample` (form decoding's
    candidates) rows of logits a step, and the `length` words of each sample (free decoding)."""
    rows = num_samples * rows_per_sample
    per_sample = rows_per_sample * (s.vocab_size * FLOAT * STEP_COPIES + 4 * s.num_layers * s.hidden_size * FLOAT)
    steps = num_samples * (length or 0) * 8  # the ids written, int64
    need = num_samples * per_sample + steps
    free = available_bytes(device)
    if free is None or need <= free:
        return
    if steps >= num_samples * per_sample:
        raise LyricgenError(
            f"length={length} with num_samples={num_samples} needs about {human(need)} for the words it writes, "
            f"more than the {human(free)} free on {torch.device(device).type}; lower length (or set lines=N)"
        )
    most = max(1, free // (per_sample + (length or 0) * 8))
    raise LyricgenError(
        f"num_samples={num_samples} needs about {human(need)} to decode ({rows:,} rows of {s.vocab_size:,} "
        f"logits a step), more than the {human(free)} free on {torch.device(device).type}; "
        f"lower num_samples (about {most:,} at most here)"
    )
