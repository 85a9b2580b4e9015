"""Evaluate a checkpoint: validation and test perplexity and bpc on the protocol split, lyric and form
measures of samples, and the same measures of the held-out lyrics as a reference."""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import lightning as L

from lyricgen.cache import cache_evaluation
from lyricgen.critic import critique
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.source import title_line
from lyricgen.data.tokenizer import NEWLINE
from lyricgen.decoding import DecodingOptions
from lyricgen.decoding.templates import tune_of
from lyricgen.generation import LyricsGenerator
from lyricgen.metrics import form_metrics, lines_of, lyric_metrics, sample_lines, tune_metrics
from lyricgen.model import LyricsLM

log = logging.getLogger(__name__)
CORPUS = "corpus"  # the key prefix of the held-out corpus's measures
TUNES = "tunes"  # the key prefix of the measures of ci in the shape of their tunes (SongNet's table)
SAMPLING = ("strategy", "temperature", "top_k", "top_p", "repetition_penalty", "num_samples")


def training_lines(datamodule: LyricsDataModule) -> list[str]:
    """The lines of the training split, as generated lines are written (for novelty)."""
    return lines_of(datamodule.tokens("train") + [NEWLINE])


def measures(
    generator: LyricsGenerator, samples: list[list[str]], known_lines: list[str], opts: DecodingOptions
) -> dict[str, float]:
    """Lyric and form measures of token samples, and their perplexity under the model (as the critic reads them)."""
    result = lyric_metrics(samples, known_lines)
    result.update(
        form_metrics(
            samples,
            generator.ngrams,
            generator.vocab.stoi,
            rhyme=opts.rhyme,
            rule=opts.rhyme_rule,
            line_chars=opts.line_chars_list(),
            acrostic=opts.acrostic,
            copy_n=opts.no_copy or 4,
        )
    )
    nll = tokens = 0.0
    for tokens_ in samples:
        text = generator.tokenizer.detokenize(tokens_)
        if text.strip():
            c = critique(generator, text, opts.rhyme_rule)
            nll += math.log(c.ppl) * c.tokens
            tokens += c.tokens
    result["sample ppl"] = math.exp(nll / tokens) if tokens else float("nan")
    return result


def sample_metrics(
    generator: LyricsGenerator, known_lines: list[str], opts: DecodingOptions, start_word: str = "", seed: int = 0
) -> dict[str, float]:
    """Measures of `opts.num_samples` samples decoded in one batch."""
    samples = generator.generate_tokens(start_word, seed=seed, opts=opts)
    return measures(generator, samples, known_lines, opts)


def corpus_measures(
    generator: LyricsGenerator, datamodule: LyricsDataModule, opts: DecodingOptions, known_lines: list[str]
) -> dict[str, float]:
    """The same measures for the held-out (validation) lyrics, cut into pieces of `opts.lines` lines:
    the reference that generated lyrics are read against."""
    lines = sample_lines(datamodule.tokens("val"))
    size = opts.lines or 8
    pieces = [[tok for line in lines[i : i + size] for tok in (*line, NEWLINE)] for i in range(0, len(lines), size)]
    return measures(generator, pieces, known_lines, opts)


def tune_figures(
    generator: LyricsGenerator, datamodule: LyricsDataModule, opts: DecodingOptions, tunes: int = 10, seed: int = 0
) -> dict[str, float]:
    """SongNet's measures (format and rhyme accuracy, Distinct-1/2 over characters; `tune_metrics`) of
    `opts.num_samples` ci of each of the `tunes` commonest tunes (or of `opts.cipai` alone), under the keys
    `tunes/<row>/<measure>`, for three rows: `cipai` (form decoding in the tune's template, with `opts`),
    `free` (sampled from the title line, as many lines, no form) and `test ci` (the real ci of those tunes in
    the test split, the reference)."""
    chosen = [generator.template(opts.cipai)] if opts.cipai else generator.tunes()[:tunes]
    free_opts = DecodingOptions(**{k: getattr(opts, k) for k in SAMPLING}, length=None)
    rows: dict[str, list] = {"cipai": [], "free": [], "test ci": []}
    for k, tpl in enumerate(chosen):
        form = dataclasses.replace(opts, cipai=tpl.tune, lines=None)
        rows["cipai"] += [(text.split("\n")[1:], tpl) for text in generator.generate("", seed + k, opts=form)]
        n = len(tpl.line_ends)
        free = dataclasses.replace(free_opts, lines=n + 1)  # the title line, then as many lines as the tune's
        texts = generator.generate(title_line(tpl.tune) + "\n", seed + k, opts=free)
        rows["free"] += [(text.split("\n")[1 : n + 1], tpl) for text in texts]
    templates = {tpl.tune: tpl for tpl in chosen}
    for song in datamodule.songs("test"):
        if (tune := tune_of(song[0])) in templates:
            rows["test ci"].append((song[1:], templates[tune]))
    return {
        f"{TUNES}/{row}/{name}": value
        for row, cis in rows.items()
        for name, value in {**tune_metrics(cis, opts.rhyme_rule), "ci": len(cis)}.items()
    }


def tune_table(result: dict[str, float]) -> str:
    """The `tunes/*` figures of `evaluate_checkpoint` as a Markdown table, a row for each kind of ci, with the
    model's character perplexity (2^bpc) and bpc on the test split beside its rows."""
    bpc = result.get("test/bpc")
    names = ("format accuracy", "rhyme accuracy", "distinct-1", "distinct-2")
    out = [
        f"| ci | character ppl | bpc | {' | '.join(names)} | ci |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row, label in (("cipai", "cipai= (form decoding)"), ("free", "unconstrained"), ("test ci", "real test ci")):
        ppl = f"{2**bpc:.2f} | {bpc:.3f}" if bpc is not None and row != "test ci" else "– | –"
        cells = " | ".join(f"{result[f'{TUNES}/{row}/{name}']:.3f}" for name in names)
        out.append(f"| {label} | {ppl} | {cells} | {int(result[f'{TUNES}/{row}/ci'])} |")
    return "\n".join(out)


def cache_figures(
    model: LyricsLM,
    datamodule: LyricsDataModule,
    windows=(),
    thetas=(),
    lambdas=(),
    max_tokens=None,
    progress: bool = False,
) -> dict[str, float]:
    """The continuous-cache figures of `model` (`lyricgen.cache`): settings tuned on val, test scored once;
    empty when no cache settings are given. `progress`: progress bars of the streams and the grid."""
    if not (windows and thetas and lambdas):
        return {}
    test_ids = datamodule.test_ids if datamodule.test_fraction > 0 else None
    return cache_evaluation(
        model.net,
        datamodule.val_ids,
        test_ids,
        datamodule.chars,
        windows,
        thetas,
        lambdas,
        max_tokens,
        progress,
    )


def evaluate_checkpoint(
    ckpt_path: str,
    datamodule: LyricsDataModule,
    opts: DecodingOptions,
    start_word: str = "",
    seed: int = 0,
    accelerator: str = "auto",
    cache: dict | None = None,
    tunes: int = 10,
) -> dict[str, float]:
    """`val/*` and `test/*` (loss, ppl, bpc) of the checkpoint on the protocol splits, the `<unk>` share of
    each, the continuous-stream and cache figures (`cache`: windows, thetas, lambdas to tune on val), the
    measures of its samples, and the same measures of the held-out (validation) lyrics under the keys
    `corpus/<measure>`; for a model trained on ci, SongNet's measures of `tunes` tunes (`tune_figures`). A
    checkpoint of a run that trained on the validation lines (`data.train_on_val`) has
    test figures and sample measures only: nothing else is held out for it."""
    opts.check()
    generator = LyricsGenerator.from_checkpoint(ckpt_path)  # also checks that it is a lyricgen checkpoint
    datamodule.use_model(generator.tokenizer, generator.vocab)  # its tokeniser and vocabulary, whatever the config
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = LyricsLM.load_from_checkpoint(ckpt_path, map_location="cpu")
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    held_out = not (datamodule.train_on_val or model.trained_on_val)  # the run's data settings, or the checkpoint
    scores = trainer.validate(model, datamodule=datamodule, verbose=False)[0] if held_out else {}
    if datamodule.test_fraction > 0:
        (test_scores,) = trainer.test(model, datamodule=datamodule, verbose=False)
        scores.update(test_scores)
    result = {
        k: float(scores[k])
        for k in ("val/loss", "val/ppl", "val/bpc", "test/loss", "test/ppl", "test/bpc")
        if k in scores
    }
    # the checkpoint may say what these data settings do not: then their val share is of trained-on lines
    result.update({f"{stage}/unk share": v for stage, v in datamodule.unk_share.items() if held_out or stage != "val"})
    if held_out:  # the cache is tuned on val
        result.update(cache_figures(model, datamodule, **(cache or {})))
    generator.net.to(model.device)
    known = training_lines(datamodule)
    result.update(sample_metrics(generator, known, opts, start_word, seed))
    if held_out:
        result.update({f"{CORPUS}/{k}": v for k, v in corpus_measures(generator, datamodule, opts, known).items()})
    if generator.templates and (tunes or opts.cipai):
        result.update(tune_figures(generator, datamodule, opts, tunes, seed))
    return result


def test_best_checkpoint(
    trainer: L.Trainer, model: LyricsLM, datamodule: LyricsDataModule, cache: dict | None = None
) -> dict[str, float]:
    """After `fit`: the test split scored once, with the checkpoint that was best on `val` (protocol v2), or
    the last one of a run that trained on val (`data.train_on_val`: its checkpoint callback monitors nothing).

    Returns test_loss, test_ppl, test_bpc, each split's `<unk>` share and,
    with `cache` (windows, thetas, lambdas), the continuous-cache figures of the same weights: settings
    tuned on val (`cache_window`, `cache_theta`, `cache_lambda`), then `test_ppl_cache`, `test_bpc_cache`,
    and `test_ppl_stream` (the test split read as one stream, without the cache).
    """
    if getattr(datamodule, "test_fraction", 0) == 0:
        return {}
    ckpt = trainer.checkpoint_callback
    best = bool(ckpt is not None and ckpt.best_model_path)
    start = time.perf_counter()
    (scores,) = trainer.test(model, datamodule=datamodule, ckpt_path="best" if best else None, verbose=False)
    result = {k.replace("/", "_"): float(v) for k, v in scores.items() if k.startswith("test/")}
    result["phase_test_s"] = round(time.perf_counter() - start, 2)
    result["test_tokens"] = len(datamodule.test_ids) - 1  # predicted: the split's first token never is
    result.update({f"unk_share_{stage}": share for stage, share in datamodule.unk_share.items()})
    # trainer.test loaded the best weights into `model`: the cache reads the same network
    start = time.perf_counter()
    bars = trainer.progress_bar_callback is not None and trainer.is_global_zero  # as the test pass's bar
    figures = cache_figures(model, datamodule, **(cache or {}), progress=bars)
    result.update({k.replace("/", "_"): v for k, v in figures.items()})
    result["phase_stream_cache_s"] = round(time.perf_counter() - start, 2)  # one-stream scoring and the cache grid
    return result
