"""Token streams cut into training samples.

`ChunkDataset` cuts the whole stream into consecutive chunks of `seq_len + 1` tokens (neighbours share
one token), so every token is a target exactly once per epoch; the last chunk may be shorter and is
padded by `pad_collate`. `StreamDataset` is the stateful layout of word_language_model's `batchify`:
`batch_size` parallel streams, where batch k+1 continues batch k in every row.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

IGNORE_INDEX = -100  # targets with this value (padding) are left out of the loss


class ChunkDataset(Dataset):
    def __init__(self, ids: torch.Tensor, seq_len: int) -> None:
        if ids.numel() < 2:
            raise ValueError("a token stream needs at least 2 tokens to make one (input, target) pair")
        self.ids = ids
        self.seq_len = seq_len

    def __len__(self) -> int:
        return -(-(self.ids.numel() - 1) // self.seq_len)  # ceil((n - 1) / seq_len)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        chunk = self.ids[i * self.seq_len : (i + 1) * self.seq_len + 1]
        return chunk[:-1], chunk[1:]


def pad_collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (input, target) pairs; a shorter last chunk is padded (inputs with 0, targets ignored)."""
    xs, ys = zip(*batch)
    if all(x.numel() == xs[0].numel() for x in xs):
        return torch.stack(xs), torch.stack(ys)
    x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=0)
    y = torch.nn.utils.rnn.pad_sequence(ys, batch_first=True, padding_value=IGNORE_INDEX)
    return x, y


class StreamDataset(Dataset):
    """Item k is a whole batch (inputs, targets) of shape (batch_size, <= seq_len)."""

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int) -> None:
        per_stream = ids.numel() // batch_size
        if per_stream < 2:
            raise ValueError(f"{ids.numel()} tokens cannot fill {batch_size} streams of at least 2 tokens")
        self.streams = ids[: per_stream * batch_size].view(batch_size, per_stream)
        self.seq_len = seq_len

    def __len__(self) -> int:
        return -(-(self.streams.size(1) - 1) // self.seq_len)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        window = self.streams[:, k * self.seq_len : (k + 1) * self.seq_len + 1]
        return window[:, :-1], window[:, 1:]
