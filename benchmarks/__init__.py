"""The measures of `scripts/benchmark.py`, beside the scripts rather than in the library: each module measures
one thing and gives rows of a Markdown table — `training` (the Lightning training step against a plain
PyTorch loop, FLOP/s), `generation` (free and form decoding), `page` (the web page's latency), `data` (the data
module's set-up, at scale too) — and `run` puts them together in the order of the table.

Everything takes plain arguments (a function that builds the data module or the model, numbers, paths);
the script composes the Hydra config and calls `run.benchmark`. Two measures run in a fresh Python process, as a
user's run would: `python -m benchmarks.data plain PATH` (a plain jieba loop) and
`python -m benchmarks.data setup PATH CACHE_DIR` (the data module's set-up and its peak memory), each printing
one JSON line (`data.in_child`).

The ratios (Lightning / plain, sampling / greedy) compare the two sides round by round: in each round they run
one right after the other on the same batches (or the same prompt and seed), in the order A B, then B A in the
next round, so a slow minute of a shared machine slows both sides of the rounds it falls in. Lightning / plain
is the ratio of the two loops' median steps over all rounds, sampling / greedy the median of per-round ratios;
the rows give the spread of the rounds beside them. The training rounds run with freed memory kept by the
allocator (`training.held_memory`), for both loops alike, and everything on one torch thread unless told otherwise.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

Row = tuple[str, str]


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, smallest and largest of `values`."""
    return statistics.median(values), min(values), max(values)
