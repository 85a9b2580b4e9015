"""How every checkpoint of a training run reaches the disk: Lightning's CheckpointIO with the project's atomic
writer (`lyricgen.files.write_atomically`), plugged into the Trainer by `conf/trainer/default.yaml` (`plugins`).

ModelCheckpoint's best and last checkpoints and Ctrl-C's `last.ckpt` (`CheckpointOnInterrupt`) all go through
`trainer.save_checkpoint`, so through here: the previous `last.ckpt` stays whole until the new one is complete,
and a full disk ends the run with one line that says what to do, every checkpoint written before it loadable.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lyricgen.errors import LyricgenError
from lyricgen.files import DISK_FULL, write_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` into memory, then the bytes written atomically next to their destination (local paths; a
    remote one, s3:// and the like, is left to Lightning's writer)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # a value torch cannot save fails here, before the disk is touched
        try:
            write_atomically(path, buffer.getbuffer())
        except OSError as e:
            if e.errno in DISK_FULL:
                raise LyricgenError(disk_full_message(Path(path), e)) from e
            raise


def disk_full_message(path: Path, e: OSError) -> str:
    """What a full disk while writing checkpoint `path` did, and what to do: free space, then resume."""
    last = path.parent / "last.ckpt"
    then = f"resume with ckpt_path={last}" if last.is_file() else "start the training again"
    return (
        f"the disk is full ({e.strerror}): checkpoint {path.name} was not written, and the run stopped; the "
        f"checkpoints in {path.parent} written before it are whole. Free some space there, then {then}"
    )
