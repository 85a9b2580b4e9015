"""The LightningDataModule: corpus source -> tokens (cached) -> split -> vocabulary -> datasets."""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch.utils.data import DataLoader

from lyricgen.data.datasets import ChunkDataset, StreamDataset, pad_collate
from lyricgen.data.source import ensure_file, read_songs
from lyricgen.data.tokenizer import NEWLINE, Tokenizer, tokenize_songs
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError

log = logging.getLogger(__name__)


def split_songs(songs: list[list[list[str]]], val_fraction: float) -> tuple[list, list]:
    """Validation = the last `val_fraction` of the lines, as one contiguous block at the end.

    One song (a single file): its last lines. Several songs (a folder): whole songs from the end, so
    that no song is split between training and validation.
    """
    if len(songs) == 1:
        lines = songs[0]
        n_val = max(1, round(len(lines) * val_fraction))
        return [lines[:-n_val]], [lines[-n_val:]]
    total = sum(len(s) for s in songs)
    n_val_songs, n_val = 0, 0
    while n_val < total * val_fraction and n_val_songs < len(songs) - 1:
        n_val_songs += 1
        n_val += len(songs[-n_val_songs])
    return songs[:-n_val_songs], songs[-n_val_songs:]


def stream(songs: list[list[list[str]]]) -> list[str]:
    """Flatten songs of tokenised lines into one token stream, a newline token after each line."""
    return [tok for song in songs for line in song for tok in (*line, NEWLINE)]


class LyricsDataModule(L.LightningDataModule):
    """Lyrics from a text file, a folder of `.txt` songs, or a `.zip` (downloaded from `url` if missing).

    Args:
        path: the corpus: a text file, a folder of `.txt` files (one song each) or a `.zip`.
        url, sha256: where to download `path` from when it is missing, and its checksum.
        member: the file inside a `.zip` to read.
        encoding: text encoding of the corpus.
        cache_dir: where the tokenised corpus is cached (None: no cache).
        seq_len, batch_size: shape of the training batches.
        val_fraction: share of the lines (from the end) held out for validation.
        min_freq: words seen fewer times in the training split become `<unk>`.
        stateful: lay the training stream out as `batch_size` parallel streams for truncated BPTT.
        hmm: jieba's HMM for words that are not in its dictionary.
    """

    def __init__(
        self,
        path: str,
        url: str | None = None,
        sha256: str | None = None,
        member: str | None = None,
        encoding: str = "utf-8",
        cache_dir: str | None = None,
        seq_len: int = 35,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        min_freq: int = 2,
        num_workers: int = 0,
        stateful: bool = False,
        hmm: bool = True,
    ) -> None:
        super().__init__()
        checks = [
            (seq_len >= 1, f"data.seq_len must be at least 1, got {seq_len}"),
            (batch_size >= 1, f"data.batch_size must be at least 1, got {batch_size}"),
            (min_freq >= 1, f"data.min_freq must be at least 1, got {min_freq}"),
            (0 < val_fraction < 1, f"data.val_fraction must be between 0 and 1 (exclusive), got {val_fraction}"),
            (num_workers >= 0, f"data.num_workers must be 0 or more, got {num_workers}"),
        ]
        for ok, message in checks:
            if not ok:
                raise LyricgenError(message)
        self.path, self.url, self.sha256, self.member = path, url, sha256, member
        self.encoding, self.cache_dir = encoding, cache_dir
        self.seq_len, self.batch_size, self.val_fraction = seq_len, batch_size, val_fraction
        self.min_freq, self.num_workers, self.stateful = min_freq, num_workers, stateful
        self.tokenizer = Tokenizer(hmm=hmm)
        self.vocab: Vocab | None = None  # set it before setup() to reuse a checkpoint's vocabulary
        self.train_tokens: list[str] = []
        self.val_tokens: list[str] = []

    def _tokenized_songs(self) -> list[list[list[str]]]:
        songs, digest = read_songs(self.path, self.encoding, self.member)
        return tokenize_songs(songs, self.tokenizer, digest, self.cache_dir)

    def prepare_data(self) -> None:
        """Download (once, with checksum) and fill the token cache; runs on one process only."""
        if self.url:
            ensure_file(self.path, self.url, self.sha256)
        self._tokenized_songs()

    def setup(self, stage: str | None = None) -> None:
        if self.train_tokens:
            return  # already set up (the training function sets up before the trainer does)
        if self.url:
            ensure_file(self.path, self.url, self.sha256)
        train_songs, val_songs = split_songs(self._tokenized_songs(), self.val_fraction)
        self.train_tokens, self.val_tokens = stream(train_songs), stream(val_songs)
        need = self.seq_len + 1
        if len(self.train_tokens) < need or len(self.val_tokens) < need:
            raise LyricgenError(
                f"corpus {self.path} is too short: {len(self.train_tokens) + len(self.val_tokens)} tokens "
                f"({len(self.train_tokens)} for training, {len(self.val_tokens)} for validation), but each split "
                f"needs at least data.seq_len + 1 = {need}; give more text or lower data.seq_len"
            )
        built = Vocab.build(self.train_tokens, self.min_freq)
        if self.vocab is not None and self.vocab != built:  # a vocabulary given from a checkpoint
            raise LyricgenError(
                f"the vocabulary of the checkpoint ({len(self.vocab)} words) does not match this data "
                f"({len(built)} words from {self.path}, min_freq={self.min_freq}); use the data settings "
                "of the run that wrote the checkpoint"
            )
        self.vocab = self.vocab or built
        self.train_ids = torch.tensor(self.vocab.encode(self.train_tokens), dtype=torch.long)
        self.val_ids = torch.tensor(self.vocab.encode(self.val_tokens), dtype=torch.long)
        log.info(
            "Corpus: %d training tokens, %d validation tokens, vocabulary of %d (min_freq=%d)",
            len(self.train_ids), len(self.val_ids), len(self.vocab), self.min_freq,
        )

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=pad_collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.stateful:
            if self.trainer is not None and self.trainer.world_size > 1:
                raise LyricgenError("data.stateful=true needs one process; use it without trainer=ddp")
            # Each item is already a batch; order matters (batch k+1 continues batch k), so no shuffling.
            dataset = StreamDataset(self.train_ids, self.batch_size, self.seq_len)
            return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.num_workers)
        return self._loader(ChunkDataset(self.train_ids, self.seq_len), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(ChunkDataset(self.val_ids, self.seq_len), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
