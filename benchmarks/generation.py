"""Generation: tokens/s of free decoding at several settings (and their ratios to greedy decoding), and form
decoding against free lines."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from benchmarks import Row, spread
from lyricgen.decoding import DecodingOptions
from lyricgen.generation import LyricsGenerator

FORM_TIMINGS = 20  # timings of form decoding and of each page request, with a checkpoint


DEFAULTS = DecodingOptions()  # generate.py's, the page's and the callbacks'
# The decoding settings timed, each for one sample of `gen_tokens` words (100 samples: a twentieth of them). The
# first four are fixed (temperature 1), so that the ratios to greedy compare across versions and defaults.
GENERATION_KINDS = [
    ("1 sample, top_p 0.95, temperature 1", DecodingOptions(temperature=1.0, top_p=0.95)),
    ("1 sample, greedy", DecodingOptions(strategy="greedy")),
    ("1 sample, top_k 40, temperature 1", DecodingOptions(temperature=1.0, top_k=40, top_p=1.0)),
    (
        "100 samples at once (num_samples=100), top_p 0.95, temperature 1",
        DecodingOptions(temperature=1.0, top_p=0.95, num_samples=100),
    ),
    (
        f"1 sample, the defaults (generate.py, the page): temperature {DEFAULTS.temperature:g}, "
        f"top_p {DEFAULTS.top_p:g}",
        DEFAULTS,
    ),
]


def time_generation(
    gen: LyricsGenerator, kinds: Sequence[tuple[str, DecodingOptions]], rounds: int, start_word: str = "星星"
) -> list[list[float]]:
    """Tokens/s of each decoding setting in `kinds`, round by round (`[round][kind]`): in each round every
    setting decodes once from `start_word` with seed 0, in the order given, then reversed in the next."""
    gen.generate(start_word, seed=0, opts=DecodingOptions(length=50))  # warm-up
    speeds = []
    for r in range(rounds):
        order = list(range(len(kinds))) if r % 2 == 0 else list(range(len(kinds)))[::-1]
        speed = [0.0] * len(kinds)
        for i in order:
            opts = kinds[i][1]
            start = time.perf_counter()
            gen.generate(start_word, seed=0, opts=opts)
            speed[i] = opts.num_samples * opts.length / (time.perf_counter() - start)
        speeds.append(speed)
    return speeds


def generation_rows(gen: LyricsGenerator, gen_tokens: int, rounds: int) -> list[Row]:
    """Tokens/s of each of `GENERATION_KINDS` (best round) and sampling/greedy, top_k/greedy (median of the
    per-round ratios, with their spread)."""
    kinds = []
    for label, opts in GENERATION_KINDS:
        length = gen_tokens if opts.num_samples == 1 else max(1, gen_tokens // 20)
        kinds.append((label, dataclasses.replace(opts, length=length)))
    speeds = time_generation(gen, kinds, rounds)
    rows = [
        (f"generation, {label}", f"{max(s[i] for s in speeds):,.0f} tokens/s") for i, (label, _) in enumerate(kinds)
    ]
    greedy = 1
    for i, label in (
        (0, "sampling/greedy (tokens/s of top_p 0.95 over greedy, 1 sample)"),
        (2, "top_k/greedy (tokens/s of top_k 40 over greedy, 1 sample)"),
        (4, "defaults/greedy (tokens/s of the defaults over greedy, 1 sample)"),
    ):
        ratio, low, high = spread([s[i] / s[greedy] for s in speeds])
        rows.append((label, f"{ratio:.2f} (median of {rounds} rounds side by side; {low:.2f}-{high:.2f})"))
    return rows


def form_rows(gen: LyricsGenerator, timings: int) -> tuple[list[Row], DecodingOptions, DecodingOptions]:
    """8 lines with rhyme=AABB line_chars=7 against 8 free lines, the same settings, best of `timings` each;
    and the two settings (for `page_latency`)."""
    free = DecodingOptions(lines=8, length=None, temperature=0.8, top_p=0.95)
    form = DecodingOptions(lines=8, length=None, temperature=0.8, top_p=0.95, rhyme="AABB", line_chars=7)
    gen.generate("", seed=0, opts=form)  # warm-up: pypinyin and the per-word tables
    times = {}
    for label, opts in (("free", free), ("form", form)):
        spans = []
        for r in range(timings):
            start = time.perf_counter()
            gen.generate("", seed=r, opts=opts)
            spans.append(time.perf_counter() - start)
        times[label] = min(spans)
    rows = [
        ("generation, 8 free lines (best of rounds)", f"{1000 * times['free']:.1f} ms"),
        (
            f"generation, 8 lines rhyme=AABB line_chars=7, best_of {form.best_of} (best of rounds)",
            f"{1000 * times['form']:.1f} ms",
        ),
        ("ratio form / free", f"{times['form'] / times['free']:.2f}"),
    ]
    return rows, free, form
