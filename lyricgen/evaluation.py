"""Evaluate a checkpoint: validation perplexity on the protocol split, lyric and form measures of samples,
and the same measures of the held-out corpus as a reference."""

from __future__ import annotations

import logging
import math

import lightning as L

from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.critic import critique
from lyricgen.data.tokenizer import NEWLINE
from lyricgen.decoding import DecodingOptions
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator, tokens_to_text
from lyricgen.metrics import form_metrics, lines_of, lyric_metrics, sample_lines
from lyricgen.model import LyricsLM

log = logging.getLogger(__name__)
CORPUS = "corpus"  # the key prefix of the held-out corpus's measures


def training_lines(datamodule: LyricsDataModule) -> list[str]:
    """The lines of the training split, as generated lines are written (for novelty)."""
    return lines_of(datamodule.train_tokens + [NEWLINE])


def measures(generator: LyricsGenerator, samples: list[list[str]], known_lines: list[str],
             opts: DecodingOptions) -> dict[str, float]:
    """Lyric and form measures of token samples, and their perplexity under the model (as the critic reads them)."""
    result = lyric_metrics(samples, known_lines)
    result.update(form_metrics(
        samples, generator.ngrams, generator.vocab.stoi, rhyme=opts.rhyme, rule=opts.rhyme_rule,
        line_chars=opts.line_chars_list(), acrostic=opts.acrostic, copy_n=opts.no_copy or 4,
    ))
    nll = tokens = 0.0
    for tokens_ in samples:
        text = tokens_to_text(tokens_)
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


def corpus_measures(generator: LyricsGenerator, datamodule: LyricsDataModule, opts: DecodingOptions) -> dict[str, float]:
    """The same measures for the held-out (validation) lyrics, cut into pieces of `opts.lines` lines:
    the reference that generated lyrics are read against."""
    lines = sample_lines(datamodule.val_tokens)
    size = opts.lines or 8
    pieces = [[tok for line in lines[i : i + size] for tok in (*line, NEWLINE)] for i in range(0, len(lines), size)]
    return measures(generator, pieces, training_lines(datamodule), opts)


def evaluate_checkpoint(
    ckpt_path: str, datamodule: LyricsDataModule, opts: DecodingOptions, start_word: str = "", seed: int = 0,
    accelerator: str = "auto",
) -> dict[str, float]:
    """`val/ppl` of the checkpoint on the datamodule's validation split, the measures of its samples, and
    the same measures of the held-out corpus under the keys `corpus/<measure>`."""
    opts.check()
    generator = LyricsGenerator.from_checkpoint(ckpt_path)  # also checks that it is a lyricgen checkpoint
    datamodule.prepare_data()
    datamodule.setup("fit")
    if datamodule.vocab != generator.vocab:
        raise LyricgenError(
            f"the data settings give another vocabulary ({len(datamodule.vocab)} words) than the checkpoint's "
            f"({len(generator.vocab)}); evaluate with the data settings of its training run"
        )
    model = LyricsLM.load_from_checkpoint(ckpt_path, map_location="cpu")
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    (scores,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    result = {"val/ppl": float(scores["val/ppl"]), "val/loss": float(scores["val/loss"])}
    generator.net.to(model.device)
    result.update(sample_metrics(generator, training_lines(datamodule), opts, start_word, seed))
    result.update({f"{CORPUS}/{k}": v for k, v in corpus_measures(generator, datamodule, opts).items()})
    return result
