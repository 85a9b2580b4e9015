"""Lyric metrics: does a model write new lyrics, or copy the corpus and loop?

- novelty: share of generated lines that do not appear verbatim in the training text.
- distinct-n: distinct word n-grams / all word n-grams over all samples (Li et al., 2016);
  line breaks and phrase breaks are not words.
- repeated-line rate: share of a sample's lines that repeat an earlier line of the same sample,
  averaged over samples.
"""

from __future__ import annotations

from collections.abc import Iterable

from lyricgen.data.tokenizer import NEWLINE, SPACE


def lines_of(tokens: list[str]) -> list[str]:
    """Lines (as text) of a token sequence; empty lines are dropped."""
    return [line for line in "".join(tokens).split(NEWLINE) if line.strip()]


def novelty(samples: list[list[str]], known_lines: set[str]) -> float:
    generated = [line for tokens in samples for line in lines_of(tokens)]
    if not generated:
        return float("nan")
    return sum(line not in known_lines for line in generated) / len(generated)


def distinct_n(samples: list[list[str]], n: int) -> float:
    grams = [
        tuple(words[i : i + n])
        for tokens in samples
        for words in [[t for t in tokens if t not in (NEWLINE, SPACE)]]
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repeated_line_rate(samples: list[list[str]]) -> float:
    rates = []
    for tokens in samples:
        lines = lines_of(tokens)
        if lines:
            rates.append((len(lines) - len(set(lines))) / len(lines))
    return sum(rates) / len(rates) if rates else float("nan")


def lyric_metrics(samples: list[list[str]], known_lines: Iterable[str]) -> dict[str, float]:
    """All metrics of token samples, with the training text's lines for novelty."""
    known = set(known_lines)
    return {
        "novelty": novelty(samples, known),
        "distinct-1": distinct_n(samples, 1),
        "distinct-2": distinct_n(samples, 2),
        "repeated-line rate": repeated_line_rate(samples),
    }
