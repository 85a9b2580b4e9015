"""From a corpus's tokens to vocabulary ids, and what bits per character must count.

`TypeIds` says how each distinct token of a corpus (its `types`) becomes vocabulary ids: itself when the
vocabulary has it; else its characters (char fallback: `Vocab.open_tokens`), each of which may still be
`<unk>`; else one `<unk>` (lyricgen before 0.3). It expands a split's stream of type ids in one vectorised
pass, without a Python list of its tokens.

Bits per character that count every character: the model's loss over the predicted tokens, plus, for each
`<unk>` it predicted, the bits to spell out what that `<unk>` stands for (`Speller`), divided by the
characters the predicted tokens stand for (`SplitChars`). A model that names a rare word `<unk>` cheaply
is charged for the word's characters, so figures of models with other vocabularies and tokenisers compare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lyricgen.data.vocab import UNK, Vocab, char_counts

UNICODE_CHARS = 0x110000 - 0x800  # Unicode's scalar values: every code point but the surrogates


class Speller:
    """The bits to spell out the text an `<unk>` stands for: a unigram of the training split's characters with
    Witten-Bell's escape for a character it never has (the escape's probability is the share of the training
    characters that were new when they came: its alphabet over its characters and alphabet together; an escaped
    character is one of the rest of Unicode, each as likely) and, where an `<unk>` can stand for more than one
    character (no char fallback), a geometric length model whose mean is the mean length of the training words
    that the vocabulary leaves out. A weak speller, but a fair one: its probabilities over all texts sum to at
    most 1, and it reads nothing of the held-out text."""

    def __init__(self, char_counts: Mapping[str, int], one_char: bool, mean_length: float = 1.0) -> None:
        self.counts = {c: n for c, n in char_counts.items() if n > 0}
        self.denominator = sum(self.counts.values()) + len(self.counts)  # characters + alphabet
        escape = len(self.counts) / self.denominator if self.counts else 1.0
        self.new_char_bits = -math.log2(escape) + math.log2(UNICODE_CHARS - len(self.counts))
        self.one_char = one_char
        self.stop = min(0.99, max(0.01, 1.0 / max(mean_length, 1.0)))  # geometric: P(length = n) = q (1-q)^(n-1)

    @classmethod
    def of_training(cls, counts: Mapping[str, int], vocab: Vocab, one_char: bool) -> Speller:
        """The speller of a training split, from its tokens' counts (`counts`: token -> occurrences)."""
        left_out = {t: n for t, n in counts.items() if n and t != UNK and t not in vocab}
        length = sum(n * len(t) for t, n in left_out.items())
        return cls(char_counts(counts), one_char, length / sum(left_out.values()) if left_out else 1.0)

    def char_bits(self, c: str) -> float:
        count = self.counts.get(c)
        return math.log2(self.denominator / count) if count else self.new_char_bits

    def bits(self, text: str) -> float:
        chars = sum(map(self.char_bits, text))
        if self.one_char or not text:
            return chars
        return chars - math.log2(self.stop) - (len(text) - 1) * math.log2(1 - self.stop)


@dataclass(frozen=True)
class SplitChars:
    """A held-out split as bits per character reads it: its predicted `tokens` (all but the first), the
    `chars` they stand for, and `unk_bits`, the bits to spell out the text of its predicted `<unk>`s."""

    tokens: int
    chars: int
    unk_bits: float = 0.0

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens

    def bpc(self, loss: float) -> float:
        """Bits per character, every character counted, of a mean loss of `loss` nats per predicted token."""
        return (float(loss) / math.log(2) + self.unk_bits / self.tokens) / self.chars_per_token


class TypeIds:
    """How each of a corpus's types becomes vocabulary ids (see the module's docstring)."""

    def __init__(self, types: Sequence[str], vocab: Vocab, char_fallback: bool, speller: Speller | None = None):
        pieces = [_pieces(t, vocab, char_fallback) for t in types]
        self.lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.flat = np.fromiter((vocab.stoi.get(p, 0) for ps in pieces for p in ps), np.int64, int(self.lengths.sum()))
        self.first_chars = np.fromiter((len(ps[0]) if ps else 0 for ps in pieces), np.int64, len(pieces))
        unk = [[speller.bits(p) if speller and p not in vocab else 0.0 for p in ps] for ps in pieces]
        self.unk_bits = np.fromiter((sum(b) for b in unk), np.float64, len(pieces))
        self.first_unk_bits = np.fromiter((b[0] if b else 0.0 for b in unk), np.float64, len(pieces))

    def ids(self, type_ids: np.ndarray) -> np.ndarray:
        """The vocabulary ids of a stream of type ids, each type expanded into its pieces."""
        type_ids = np.asarray(type_ids, dtype=np.int64)
        lengths = self.lengths[type_ids]
        if (lengths == 1).all():  # nothing spelt out: one id a token
            return self.flat[self.starts[type_ids]]
        owner = np.repeat(np.arange(len(type_ids)), lengths)  # the token each piece comes from
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.flat[self.starts[type_ids[owner]] + within]


def _pieces(token: str, vocab: Vocab, char_fallback: bool) -> list[str]:
    if token in vocab or not char_fallback or not token:
        return [token]
    return list(token)
