"""Hashed word n-grams of the training split: what `no_copy` and the copy measures check against.

Written at training time into the checkpoint, so that generation never reads the corpus and the
checkpoint does not carry the training text itself, only 62-bit hashes of its word runs.

Runs are taken inside lines (a line break ends a run) over words: phrase-break spaces are skipped and
a run holding `<unk>` is left out (the model never writes `<unk>`). For each n in 2..max_n the index keeps
(hash of the first n-1 words, id of the n-th word) pairs, sorted, so that one binary search per context
gives every word that would complete a training run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from lyricgen.data.tokenizer import NEWLINE, SPACE

# Two polynomial hashes modulo primes below 2**31, packed into one int64 key (collisions ~ 2**-62).
_M1, _M2 = 2147483647, 2147483629
_P1, _P2 = 1000003, 998244353 % 2147483629


def word_lines(tokens: Iterable[str]) -> list[list[str]]:
    """Words of each line of a token stream (spaces dropped, a newline ends a line; empty lines kept)."""
    lines: list[list[str]] = [[]]
    for t in tokens:
        if t == NEWLINE:
            lines.append([])
        elif t != SPACE:
            lines[-1].append(t)
    if not lines[-1]:
        lines.pop()
    return lines


def _keys(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    return (h1.astype(np.int64) << 31) | h2.astype(np.int64)


def hash_runs(runs: np.ndarray) -> np.ndarray:
    """Keys of word-id runs: an int array (rows, k) -> int64 (rows,)."""
    h1 = np.zeros(len(runs), dtype=np.int64)
    h2 = np.zeros(len(runs), dtype=np.int64)
    for j in range(runs.shape[1]):
        w = runs[:, j].astype(np.int64) + 1
        h1 = (h1 * _P1 + w) % _M1
        h2 = (h2 * _P2 + w) % _M2
    return _keys(h1, h2)


class NgramIndex:
    """For each n: sorted context keys (hash of n-1 words) and the ids that follow them in training."""

    def __init__(self, max_n: int, contexts: dict[int, np.ndarray], nexts: dict[int, np.ndarray]) -> None:
        self.max_n, self.contexts, self.nexts = max_n, contexts, nexts

    @classmethod
    def build(cls, lines: Sequence[Sequence[int]], max_n: int = 8, unk_id: int = 0) -> NgramIndex:
        """Index the runs of 2..max_n word ids inside each line (lines of ids, spaces already dropped)."""
        flat, line_of = [], []
        for i, line in enumerate(lines):
            flat.extend(line)
            line_of.extend([i] * len(line))
        return cls.from_arrays(np.asarray(flat, dtype=np.int64), np.asarray(line_of, dtype=np.int64), max_n, unk_id)

    @classmethod
    def from_arrays(cls, ids: np.ndarray, line_of: np.ndarray, max_n: int = 8, unk_id: int = 0) -> NgramIndex:
        """`build` from the word ids in one array and the line each one belongs to (non-decreasing)."""
        ids, line_of = np.asarray(ids, dtype=np.int64), np.asarray(line_of, dtype=np.int64)
        contexts, nexts = {}, {}
        for n in range(2, max_n + 1):
            if len(ids) < n:
                contexts[n], nexts[n] = np.zeros(0, np.int64), np.zeros(0, np.int64)
                continue
            runs = np.lib.stride_tricks.sliding_window_view(ids, n)
            same_line = line_of[: len(runs)] == line_of[n - 1 :]
            keep = same_line & (runs != unk_id).all(axis=1)
            runs = runs[keep]
            keys, follow = hash_runs(runs[:, :-1]), runs[:, -1]
            order = np.lexsort((follow, keys))  # sorted by key, then by the next id
            keys, follow = keys[order], follow[order]
            first = np.ones(len(keys), dtype=bool)  # each distinct (key, next) pair once
            first[1:] = (keys[1:] != keys[:-1]) | (follow[1:] != follow[:-1])
            contexts[n], nexts[n] = keys[first], follow[first]
        return cls(max_n, contexts, nexts)

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], stoi: dict[str, int], max_n: int = 8) -> NgramIndex:
        """The index of a token stream (e.g. the training split), with a vocabulary's ids."""
        return cls.build([[stoi.get(w, 0) for w in line] for line in word_lines(tokens)], max_n)

    def __len__(self) -> int:
        return sum(len(v) for v in self.contexts.values())

    def followers(self, context: Sequence[int]) -> np.ndarray:
        """Ids that follow the word run `context` somewhere in training (len(context) + 1 <= max_n)."""
        n = len(context) + 1
        keys = self.contexts[n]
        key = hash_runs(np.asarray([context], dtype=np.int64))[0]
        lo, hi = np.searchsorted(keys, key, "left"), np.searchsorted(keys, key, "right")
        return self.nexts[n][lo:hi]

    def contains(self, run: Sequence[int]) -> bool:
        """Whether this run of 2..max_n word ids occurs inside a training line."""
        return len(run) >= 2 and bool((self.followers(run[:-1]) == run[-1]).any())

    def longest_run(self, line: Sequence[int]) -> tuple[int, int]:
        """(length, start) of the longest run of `line` found in training, capped at max_n (0 if none)."""
        best, start = 0, 0
        for i in range(len(line) - 1):
            n = 1
            while i + n < len(line) and n < self.max_n and self.contains(line[i : i + n + 1]):
                n += 1
            if n > 1 and n > best:
                best, start = n, i
        return best, start

    def to_dict(self) -> dict:
        """Tensors and ints only, so that checkpoints load with `weights_only=True`."""
        return {
            "max_n": self.max_n,
            "contexts": {str(n): torch.from_numpy(v) for n, v in self.contexts.items()},
            "nexts": {str(n): torch.from_numpy(v) for n, v in self.nexts.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> NgramIndex:
        def arrays(key: str) -> dict[int, np.ndarray]:
            return {int(n): v.numpy() for n, v in d[key].items()}

        return cls(int(d["max_n"]), arrays("contexts"), arrays("nexts"))
