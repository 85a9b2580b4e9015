"""The vocabulary: made once from the training split, saved as JSON and inside every checkpoint."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from lyricgen.errors import LyricgenError
from lyricgen.files import write_atomically

UNK = "<unk>"


class Vocab:
    """Token <-> id mapping; id 0 is `<unk>`, which stands for every word not in the vocabulary."""

    def __init__(self, tokens: list[str]) -> None:
        if not tokens or tokens[0] != UNK:
            raise ValueError(f"a vocabulary starts with {UNK!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary has no duplicate tokens")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, tokens: Iterable[str], min_freq: int = 2, max_vocab: int | None = None) -> "Vocab":
        """Tokens seen at least `min_freq` times, most frequent first, ties in code-point order; with
        `max_vocab`, only the `max_vocab` most frequent of them (besides `<unk>`)."""
        return cls.from_counts(Counter(tokens), min_freq, max_vocab)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_freq: int = 2, max_vocab: int | None = None) -> "Vocab":
        """`build` from the tokens' counts (e.g. a bincount of a split's ids)."""
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t != UNK), key=lambda t: (-counts[t], t))
        return cls([UNK, *kept[:max_vocab]])

    @property
    def unk_id(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, 0) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_dict(self) -> dict:
        return {"tokens": self.itos}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        return cls(d["tokens"])

    def save(self, path: str | os.PathLike) -> None:
        write_atomically(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=0).encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LyricgenError(f"cannot read vocabulary {path}: {e}") from None
