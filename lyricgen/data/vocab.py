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


def char_counts(counts: Mapping[str, int]) -> Counter:
    """How often each character occurs in tokens of `counts` (token -> occurrences), `<unk>` left out."""
    chars: Counter = Counter()
    for token, count in counts.items():
        if count and token != UNK:
            for c in token:
                chars[c] += count
    return chars


class Vocab:
    """Token <-> id mapping; id 0 is `<unk>`, which stands for every word not in the vocabulary.

    An open vocabulary (`chars=True` in `build`) also holds the characters of the training split seen
    `char_min_freq` times, so that a word outside it can be written as its characters (`open_tokens`): `<unk>`
    is then left only for the rarest characters.
    """

    def __init__(self, tokens: list[str]) -> None:
        if not tokens or tokens[0] != UNK:
            raise ValueError(f"a vocabulary starts with {UNK!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary has no duplicate tokens")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        min_freq: int = 2,
        max_vocab: int | None = None,
        chars: bool = False,
        char_min_freq: int = 1,
    ) -> Vocab:
        """Tokens seen at least `min_freq` times, most frequent first, ties in code-point order; with
        `max_vocab`, only the `max_vocab` most frequent of them (besides `<unk>`). With `chars`, the characters of
        the tokens too (the alphabet that unknown words are spelt with): those seen at least `char_min_freq`
        times, 1: every one."""
        return cls.from_counts(Counter(tokens), min_freq, max_vocab, chars, char_min_freq)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        min_freq: int = 2,
        max_vocab: int | None = None,
        chars: bool = False,
        char_min_freq: int = 1,
    ) -> Vocab:
        """`build` from the tokens' counts (e.g. a bincount of a split's ids). With `chars`, the order is that of
        the counts once each word left out is written as its characters (what the model is trained on)."""
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t != UNK), key=lambda t: (-counts[t], t))
        kept = kept[:max_vocab]
        if not chars:
            return cls([UNK, *kept])
        alphabet = char_counts(counts)
        written = Counter({t: counts[t] for t in kept})  # the counts once the words left out are spelt out
        for token, count in counts.items():
            if count and token != UNK and token not in written:
                for c in token:
                    written[c] += count
        tokens = set(kept) | {c for c, n in alphabet.items() if n >= char_min_freq}
        return cls([UNK, *sorted(tokens, key=lambda t: (-written[t], t))])

    def extended(self, tokens: Iterable[str]) -> Vocab:
        """This vocabulary with `tokens` it lacks appended as new ids (the ids it has keep their meaning)."""
        new = [t for t in dict.fromkeys(tokens) if t not in self.stoi and t != UNK]
        return Vocab([*self.itos, *new]) if new else self

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

    def open_tokens(self, tokens: Iterable[str]) -> list[str]:
        """The tokens with each one the vocabulary lacks written as its characters (each of which may still be
        `<unk>`, if the training split never had it)."""
        return [piece for t in tokens for piece in ((t,) if t in self.stoi else t)]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_dict(self) -> dict:
        return {"tokens": self.itos}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(d["tokens"])

    def save(self, path: str | os.PathLike) -> None:
        write_atomically(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=0).encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LyricgenError(f"cannot read vocabulary {path}: {e}") from None
