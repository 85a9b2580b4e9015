"""Protocol v2's splits: each a contiguous block of lines in corpus order (whole songs from the end for a
corpus of several songs), the test block last, validation before it, training the rest."""

from __future__ import annotations

import numpy as np

from lyricgen.data.corpus import TokenizedCorpus
from lyricgen.data.source import Song


def _held_out(song_lines: list[int], fraction: float, total: int) -> int:
    """How many lines to hold out from the end: the last `fraction` of `total` lines; whole songs when there
    are several (song_lines: the line counts of the songs left, shortened in place)."""
    if len(song_lines) == 1:
        n = min(song_lines[0], max(1, round(total * fraction)))
        song_lines[0] -= n
        return n
    n_songs, n = 0, 0
    while n < total * fraction and n_songs < len(song_lines) - 1:
        n_songs += 1
        n += song_lines[-n_songs]
    del song_lines[len(song_lines) - n_songs :]
    return n


def split_lines(song_lines, val_fraction: float, test_fraction: float = 0.0) -> tuple[int, int]:
    """Protocol v2: the line indices where val and test begin. Test = the last `test_fraction` of the lines,
    val = the `val_fraction` before it, train = the rest, each one contiguous block in corpus order.

    One song (a single file): blocks of lines. Several songs (a folder): whole songs from the end, so
    that no song is split between two splits. `test_fraction=0` gives an empty test split.
    """
    left = [int(n) for n in song_lines]
    total = sum(left)
    n_test = _held_out(left, test_fraction, total) if test_fraction > 0 else 0
    n_val = _held_out(left, val_fraction, total)
    return total - n_test - n_val, total - n_test


def bounded_stop(corpus: TokenizedCorpus, start: int, max_tokens: int | None) -> int:
    """The line where a held-out block that begins at line `start` and runs to the end stops when it may
    hold at most `max_tokens` tokens: after its last whole song that fits (a folder of songs) or its last
    line that fits (one text), and never before its first song or line; the corpus's end when None."""
    if max_tokens is None:
        return corpus.n_lines
    ends = np.cumsum(corpus.song_lines) if len(corpus.song_lines) > 1 else np.arange(1, corpus.n_lines + 1)
    ends = ends[ends > start]  # the lines after which the block may stop
    limit = corpus.line_offset(start) + max_tokens
    fits = ends[corpus.line_ends[ends - 1] <= limit]
    return int(fits[-1]) if len(fits) else int(ends[0])


def training_lines(
    songs: list[Song], val_fraction: float, test_fraction: float, train_on_val: bool = False
) -> list[str]:
    """The lines of the training split (with the validation lines in a final run), as text: what a tokeniser
    that is learnt (sentencepiece) learns from."""
    val_start, test_start = split_lines([len(song) for song in songs], val_fraction, test_fraction)
    return [line for song in songs for line in song][: test_start if train_on_val else val_start]
