"""The critic: score lyrics a person wrote (or a model) — per line its characters, rhyme class, perplexity
under the model and whether it copies the training text; then the rhyme scheme, the rhyme rate and the
perplexity of the whole text.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from lyricgen.cache import read_stream
from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.tokenizer import NEWLINE, SPACE
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator
from lyricgen.metrics import line_class
from lyricgen.prosody import count_chars

log = logging.getLogger(__name__)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWYZ"  # X is kept for lines that rhyme with no other


@dataclass
class LineScore:
    text: str
    chars: int
    rhyme: str | None
    ppl: float
    copied: int  # longest run of words found in a training line (0: none)
    where: str = ""  # the training line holding that run, when the corpus is at hand


@dataclass
class Critique:
    lines: list[LineScore]
    scheme: str
    rhyme_rate: float
    ppl: float
    tokens: int
    unknown: list[str]
    copy_n: int


def detect_scheme(classes: list[str | None]) -> str:
    """A letter per line: lines of one rhyme class share a letter (A, B, ... in order of appearance);
    a line whose class no other line has, or that has none, is X."""
    counts = Counter(c for c in classes if c is not None)
    letters: dict[str, str] = {}
    out = []
    for c in classes:
        if c is None or counts[c] < 2:
            out.append("X")
            continue
        if c not in letters:
            letters[c] = LETTERS[len(letters) % len(LETTERS)]
        out.append(letters[c])
    return "".join(out)


def _token_nll(generator: LyricsGenerator, ids: list[int]) -> list[float]:
    """Negative log-likelihood (nats) of each of `ids`, after a line break as the first context."""
    newline = generator.vocab.stoi.get(NEWLINE, 0)
    return (-read_stream(generator.net, torch.tensor([newline, *ids])).target_prob.log()).tolist()


def critique(
    generator: LyricsGenerator,
    text: str,
    rule: str = "shisan",
    copy_n: int = 4,
    training_lines: list[list[str]] | None = None,
) -> Critique:
    """Score `text` (lines of lyrics) with the model of `generator`.

    Copies are found with the checkpoint's n-gram index (or one made from `training_lines`); when the
    training lines are given, each copied run is also located in them.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise LyricgenError("the text has no lyrics (no non-blank line); give a file with lyrics in it")
    vocab = generator.vocab
    ngrams = generator.ngrams
    if ngrams is None and training_lines is not None:
        ngrams = NgramIndex.build([vocab.encode(words) for words in training_lines], max(copy_n, 8))
    tokens_per_line = [generator.written(generator.tokenizer.tokenize_line(line)) for line in lines]
    ids = [i for tokens in tokens_per_line for i in (*vocab.encode(tokens), vocab.stoi.get(NEWLINE, 0))]
    nll = _token_nll(generator, ids)
    scores, pos, classes = [], 0, []
    for line, tokens in zip(lines, tokens_per_line):
        n = len(tokens) + 1
        words = [t for t in tokens if t != SPACE]
        cls = line_class(words, rule)
        classes.append(cls)
        copied, where = 0, ""
        if ngrams is not None:
            copied, start = ngrams.longest_run(vocab.encode(words))
            if copied >= copy_n and training_lines is not None:
                where = _locate(words[start : start + copied], training_lines)
        scores.append(LineScore(line, count_chars(line), cls, math.exp(sum(nll[pos : pos + n]) / n), copied, where))
        pos += n
    pairs = list(zip(classes, classes[1:]))
    rate = sum(a is not None and a == b for a, b in pairs) / len(pairs) if pairs else float("nan")
    unknown = sorted({t for tokens in tokens_per_line for t in tokens if t != SPACE and t not in vocab})
    return Critique(scores, detect_scheme(classes), rate, math.exp(sum(nll) / len(nll)), len(nll), unknown, copy_n)


def _locate(run: list[str], training_lines: list[list[str]]) -> str:
    k = len(run)
    for i, words in enumerate(training_lines):
        if any(words[j : j + k] == run for j in range(len(words) - k + 1)):
            return f"training line {i + 1}: {''.join(words)}"
    return ""


def format_critique(c: Critique, has_index: bool = True) -> str:
    """The critic's report: a table of lines, then the scheme, the rhyme rate and `perplexity: ...`."""
    rows = ["| # | line | chars | rhyme | ppl | copied |", "| --- | --- | --- | --- | --- | --- |"]
    for i, s in enumerate(c.lines, 1):
        rows.append(
            f"| {i} | {s.text} | {s.chars} | {s.rhyme or '-'} | {s.ppl:.1f} | {copied_cell(s, c.copy_n, has_index)} |"
        )
    return "\n".join([*rows, "", *summary_lines(c, has_index)])


def copied_cell(s: LineScore, copy_n: int, has_index: bool = True) -> str:
    """The `copied` column of a line: no, yes with the run's length (and where), or ? without an index."""
    if not has_index:
        return "?"
    if s.copied >= copy_n:
        return f"yes: {s.copied} words" + (f" ({s.where})" if s.where else "")
    return "no"


def summary_lines(c: Critique, has_index: bool = True) -> list[str]:
    """The report's lines after the table: scheme, rhyme rate, unknown words, `perplexity: ...` last."""
    rows = [f"scheme: {c.scheme}"]
    rows.append(f"rhyme rate: {c.rhyme_rate:.2f} (adjacent line pairs in one rhyme class)")
    if c.unknown:
        rows.append(f"unknown words (scored as <unk>): {len(c.unknown)} ({', '.join(c.unknown[:10])})")
    if not has_index:
        rows.append("copied: ? (this checkpoint has no n-gram index and its corpus was not found; retrain it)")
    rows.append(f"perplexity: {c.ppl:.2f} ({c.tokens} tokens)")
    return rows


def read_lyrics(path: str | Path) -> str:
    """The text of a lyrics file, with errors that say what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise LyricgenError(f"lyrics file {path} does not exist; pass path=FILE (a UTF-8 text file, one line per line)")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise LyricgenError(f"{path} looks like binary data, not text; give a UTF-8 text file of lyrics")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LyricgenError(f"{path} is not valid UTF-8 text (byte {e.start}); save it as UTF-8") from None


def training_lines_of_run(ckpt_path: str | Path, generator: LyricsGenerator) -> list[list[str]] | None:
    """The training split's lines (words, as the checkpoint's model reads them: `generator`, loaded from it) of
    the checkpoint's run, read with the run's data settings, or None when its config or corpus is not at hand
    (then copies are found without their place)."""
    from hydra.utils import instantiate

    from lyricgen.config import run_data_config
    from lyricgen.data.ngrams import word_lines

    try:
        data_cfg, _ = run_data_config(ckpt_path)
        if data_cfg is None:
            return None
        datamodule = instantiate(data_cfg)
        datamodule.use_model(generator.tokenizer, generator.vocab)  # the words as the model reads them
        datamodule.setup("fit")
    except (LyricgenError, OSError) as e:
        log.warning("training text not read (%s); copies are reported without their place", e)
        return None
    return word_lines(datamodule.written_tokens("train"))
