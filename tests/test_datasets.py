import torch

from lyricgen.data.datasets import IGNORE_INDEX, ChunkDataset, StreamDataset, pad_collate


def test_chunks_cover_the_stream_and_targets_are_shifted():
    ids = torch.arange(100)
    ds = ChunkDataset(ids, seq_len=7)
    targets = []
    for i in range(len(ds)):
        x, y = ds[i]
        assert torch.equal(y[:-1], x[1:])  # the target is the input shifted by one
        assert y[-1] == x[-1] + 1
        targets.append(y)
    # every token after the first is a target exactly once, the first token is the first input
    assert torch.equal(torch.cat(targets), ids[1:])
    assert ds[0][0][0] == 0


def test_padding_of_the_short_last_chunk_is_ignored():
    ds = ChunkDataset(torch.arange(10), seq_len=4)  # chunks: 4, 4, 1 targets
    x, y = pad_collate([ds[i] for i in range(len(ds))])
    assert x.shape == y.shape == (3, 4)
    assert (y != IGNORE_INDEX).sum() == 9


def test_stateful_batches_continue_each_other():
    ids = torch.arange(1000)
    ds = StreamDataset(ids, batch_size=4, seq_len=10)
    for k in range(len(ds) - 1):
        x, y = ds[k]
        x_next, _ = ds[k + 1]
        assert x.shape[0] == 4
        assert torch.equal(x_next[:, 0], x[:, -1] + 1)  # each row continues where it stopped
        assert torch.equal(y, x + 1)
