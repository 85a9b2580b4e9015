"""Evaluate a checkpoint: validation perplexity on the protocol split, and lyric metrics of samples."""

from __future__ import annotations

import logging

import lightning as L

from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.tokenizer import NEWLINE
from lyricgen.errors import LyricgenError
from lyricgen.generation import DecodingOptions, LyricsGenerator
from lyricgen.metrics import lines_of, lyric_metrics
from lyricgen.model import LyricsLM

log = logging.getLogger(__name__)


def training_lines(datamodule: LyricsDataModule) -> list[str]:
    """The lines of the training split, as generated lines are written (for novelty)."""
    return lines_of(datamodule.train_tokens + [NEWLINE])


def sample_metrics(
    generator: LyricsGenerator, known_lines: list[str], opts: DecodingOptions, start_word: str = "", seed: int = 0
) -> dict[str, float]:
    """Lyric metrics of `opts.num_samples` samples decoded in one batch."""
    samples = generator.generate_tokens(start_word, seed=seed, opts=opts)
    return lyric_metrics(samples, known_lines)


def evaluate_checkpoint(
    ckpt_path: str, datamodule: LyricsDataModule, opts: DecodingOptions, start_word: str = "", seed: int = 0,
    accelerator: str = "auto",
) -> dict[str, float]:
    """`val/ppl` of the checkpoint on the datamodule's validation split, then the lyric metrics."""
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
    return result
