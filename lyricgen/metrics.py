"""Lyric metrics: does a model write new lyrics, or copy the corpus and loop? Does it keep the form?

- novelty: share of generated lines that do not appear verbatim in the training text.
- distinct-n: distinct word n-grams / all word n-grams over all samples (Li et al., 2016);
  line breaks and phrase breaks are not words.
- repeated-line rate: share of a sample's lines that repeat an earlier line of the same sample,
  averaged over samples.
"""

from __future__ import annotations

from collections.abc import Iterable

from lyricgen.data.ngrams import NgramIndex, word_lines
from lyricgen.data.tokenizer import NEWLINE, SPACE
from lyricgen.decoding.templates import Template, rhyme_hits
from lyricgen.prosody import count_chars, rhyme_class


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


# Form measures: rhyme, scheme, line lengths, acrostic, copying (see lyricgen.decoding for the rules).


def sample_lines(tokens: list[str]) -> list[list[str]]:
    """The non-empty lines of a token sample, each as its words (no spaces)."""
    return [line for line in word_lines(tokens) if line]


def line_class(words: list[str], rule: str) -> str | None:
    """The rhyme class of a line: that of its last word with a character that counts."""
    last = next((w for w in reversed(words) if count_chars(w)), None)
    return rhyme_class(last, rule) if last else None


def rhyme_rate(samples: list[list[str]], rule: str = "shisan") -> float:
    """Share of adjacent line pairs (inside a sample) whose last words are in the same rhyme class."""
    pairs = hits = 0
    for tokens in samples:
        classes = [line_class(line, rule) for line in sample_lines(tokens)]
        for a, b in zip(classes, classes[1:]):
            pairs += 1
            hits += a is not None and a == b
    return hits / pairs if pairs else float("nan")


def scheme_accuracy(samples: list[list[str]], scheme: str, rule: str = "shisan") -> float:
    """Share of the pairs the scheme asks to rhyme (each line and the previous line of its letter) that do."""
    pairs = hits = 0
    for tokens in samples:
        last_of: dict[str, str | None] = {}
        for i, line in enumerate(sample_lines(tokens)):
            letter = scheme[i % len(scheme)]
            cls = line_class(line, rule)
            if letter != "X":
                if letter in last_of:
                    pairs += 1
                    hits += cls is not None and cls == last_of[letter]
                last_of[letter] = cls
    return hits / pairs if pairs else float("nan")


def line_length_accuracy(samples: list[list[str]], line_chars: list[int]) -> float:
    """Share of lines with exactly the asked number of characters (cycled over the lines)."""
    checks = [
        count_chars("".join(line)) == line_chars[i % len(line_chars)]
        for tokens in samples
        for i, line in enumerate(sample_lines(tokens))
    ]
    return sum(checks) / len(checks) if checks else float("nan")


def acrostic_accuracy(samples: list[list[str]], acrostic: str) -> float:
    """Share of the acrostic's lines that begin with their character."""
    checks = [
        next((ch for ch in "".join(line) if ch.isalnum()), "") == acrostic[i]
        for tokens in samples
        for i, line in enumerate(sample_lines(tokens)[: len(acrostic)])
    ]
    return sum(checks) / len(checks) if checks else float("nan")


def copy_stats(samples: list[list[str]], ngrams: NgramIndex, stoi: dict[str, int], n: int) -> tuple[float, int]:
    """(share of lines holding a run of >= n words of a training line, longest such run, capped at the
    index's max_n) for an `NgramIndex` of the training split."""
    lines = [line for tokens in samples for line in sample_lines(tokens)]
    longest = [ngrams.longest_run([stoi.get(w, 0) for w in line])[0] for line in lines]
    if not lines:
        return float("nan"), 0
    return sum(r >= n for r in longest) / len(lines), max(longest)


def form_metrics(
    samples: list[list[str]],
    ngrams: NgramIndex | None = None,
    stoi: dict[str, int] | None = None,
    *,
    rhyme: str | None = None,
    rule: str = "shisan",
    line_chars: list[int] | None = None,
    acrostic: str | None = None,
    copy_n: int = 4,
) -> dict[str, float]:
    """Rhyme rate always; scheme, line-length and acrostic accuracy when asked; copy rate with an index."""
    out = {"rhyme rate": rhyme_rate(samples, rule)}
    if rhyme:
        out["scheme accuracy"] = scheme_accuracy(samples, rhyme, rule)
    if line_chars:
        out["line-length accuracy"] = line_length_accuracy(samples, line_chars)
    if acrostic:
        out["acrostic accuracy"] = acrostic_accuracy(samples, acrostic)
    if ngrams is not None and stoi is not None:
        rate, longest = copy_stats(samples, ngrams, stoi, copy_n)
        out[f"copy rate (>= {copy_n} words)"] = rate
        out["longest copied run"] = float(longest)
    return out


# SongNet's measures of ci (Li et al. 2020, "Rigid Formats Controlled Text Generation"), as computed here
# (docs/benchmarks.md says where they differ from SongNet's code): each ci is its lines after the title line.


def char_distinct(texts: list[str], n: int) -> float:
    """Distinct-n over characters, pooled over all texts: SongNet's Distinct (a ci's characters joined,
    punctuation included, line breaks left out)."""
    grams = [text[i : i + n] for text in texts for i in range(len(text) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def tune_metrics(cis: list[tuple[list[str], Template]], rule: str = "shisan") -> dict[str, float]:
    """Format accuracy (share of ci whose clause lengths and punctuation are their tune's template's), rhyme
    accuracy (share of the template's rhyme positions that rhyme, over the ci in its shape: `rhyme_hits`) and
    Distinct-1/2 over characters, of ci each with the template of its tune."""
    matched = [(lines, tpl) for lines, tpl in cis if tpl.matches(lines)]
    hits = [rhyme_hits(lines, tpl, rule) for lines, tpl in matched]
    rhymed, positions = sum(h for h, _ in hits), sum(n for _, n in hits)
    texts = ["".join(lines) for lines, _ in cis]
    return {
        "format accuracy": len(matched) / len(cis) if cis else float("nan"),
        "rhyme accuracy": rhymed / positions if positions else float("nan"),
        "distinct-1": char_distinct(texts, 1),
        "distinct-2": char_distinct(texts, 2),
    }
