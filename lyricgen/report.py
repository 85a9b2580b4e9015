"""What `scripts/evaluate.py` prints: the measures of a checkpoint's samples beside the held-out lyrics', how the
samples were drawn, and for a model of ci SongNet's measures in the shapes of its tunes."""

from __future__ import annotations

from lyricgen.decoding import DecodingOptions
from lyricgen.evaluation import CORPUS, TUNES, tune_table


def evaluation_report(result: dict[str, float], opts: DecodingOptions, ckpt_path, lines: int | None, tunes: str) -> str:
    """`result` of `evaluate_checkpoint` as Markdown: a row a measure (samples, held-out corpus), the settings
    the `opts` samples were drawn with, and the tunes' table when there is one (`tunes`: which were asked for)."""
    out = ["| metric | samples | held-out corpus |", "| --- | --- | --- |"]
    for name, value in result.items():
        if not name.startswith((f"{CORPUS}/", f"{TUNES}/")):
            ref = result.get(f"{CORPUS}/{name}")
            out.append(f"| {name} | {value:.3f} | {'' if ref is None else f'{ref:.3f}'} |")
    form = ", ".join(f"{k} {v}" for k in ("rhyme", "line_chars", "acrostic", "no_copy") if (v := getattr(opts, k)))
    out.append(
        f"\n({opts.num_samples} samples of {opts.form_lines() if opts.form else lines} lines, {opts.strategy}, "
        f"temperature {opts.temperature}, top_p {opts.top_p}, top_k {opts.top_k}{'; ' + form if form else ''}; "
        f"the corpus in pieces of as many lines; checkpoint {ckpt_path})"
    )
    if f"{TUNES}/cipai/ci" in result:  # a model of ci: SongNet's measures, in the shapes of its tunes
        out.append(
            f"\n{tune_table(result)}\n\n({tunes}, {opts.num_samples} ci each; character ppl = 2^bpc of the test "
            f"split; rhyme rule {opts.rhyme_rule}; docs/benchmarks.md: the measures against SongNet's)"
        )
    return "\n".join(out)
