"""Callbacks: lyrics samples written to TensorBoard after each validation epoch (each training epoch in a run
without validation)."""

from __future__ import annotations

import logging
import os
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from lyricgen.decoding import DecodingOptions
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator

log = logging.getLogger(__name__)


class SampleLyrics(L.Callback):
    """Generate lyrics for fixed prompts at each validation end (at each training epoch's end when the run has
    no validation: `data.train_on_val`) and log them as TensorBoard text.

    The same seed every epoch, so the dashboard shows how one draw of the dice changes as the model
    learns (like Lightning Bolts' TensorboardGenerativeModelImageSampler, for text).
    """

    def __init__(
        self,
        prompts: list[str] = ("星星", "我", "爱"),
        decoding: dict | None = None,
        seed: int = 0,
        tag: str = "samples",
    ) -> None:
        self.prompts = list(prompts)
        self.seed = seed
        self.tag = tag
        self.opts = DecodingOptions.from_mapping(decoding or {"lines": 4, "length": 120}).check()  # else the defaults

    def samples(self, pl_module: L.LightningModule) -> dict[str, str]:
        generator = LyricsGenerator.from_model(pl_module)
        out = {}
        for prompt in self.prompts:
            try:
                out[prompt] = generator.generate(prompt, seed=self.seed, opts=self.opts)[0]
            except LyricgenError as e:  # a prompt this corpus does not know: say so on the dashboard
                out[prompt] = f"({e})"
        return out

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._log_samples(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.enable_validation:
            self._log_samples(trainer, pl_module)

    @rank_zero_only
    def _log_samples(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.prompts:
            return
        with torch.random.fork_rng(devices=[]):
            samples = self.samples(pl_module)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for prompt, text in samples.items():
                    # Markdown: a line break needs two trailing spaces.
                    logger.experiment.add_text(f"{self.tag}/{prompt}", text.replace("\n", "  \n"), trainer.global_step)


class CheckpointOnInterrupt(L.Callback):
    """On Ctrl-C, save the interrupted state as `last.ckpt`, so that it generates and resumes.

    (ModelCheckpoint's own `save_on_exception` would also write a file named like a best checkpoint.)
    """

    def __init__(self, dirpath: str, filename: str = "last.ckpt") -> None:
        self.path = os.path.join(dirpath, filename)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and not trainer.sanity_checking:
            trainer.save_checkpoint(self.path)
            if trainer.is_global_zero:
                log.warning("Interrupted: saved %s; resume with ckpt_path=%s", self.path, self.path)


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, closed when the run stops on an error (e.g. a full disk): the line that says what
    went wrong then starts a line of its own and stays the last one (a bar left open is drawn again at exit)."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        for name in ("_train_progress_bar", "_val_progress_bar", "_test_progress_bar", "_predict_progress_bar"):
            bar = getattr(self, name, None)
            if bar is not None:
                bar.close()


class LyricsMetrics(L.Callback):
    """At the end of training, sample from the best checkpoint and log the lyric and form measures
    (novelty, distinct-1/2, repeated-line rate, rhyme rate, copy rate; see `lyricgen.metrics`) as `eval/*`
    scalars: the numbers `scripts/evaluate.py` prints, for the same decoding settings."""

    def __init__(self, decoding: dict | None = None, seed: int = 0) -> None:
        self.seed = seed
        self.opts = DecodingOptions.from_mapping(decoding or {"num_samples": 100, "lines": 8, "length": 400}).check()
        self.metrics: dict[str, float] = {}

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if getattr(datamodule, "corpus", None) is None:  # not set up
            return
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            generator = LyricsGenerator.from_checkpoint(best, device=pl_module.device)
        else:
            generator = LyricsGenerator.from_model(pl_module)
        from lyricgen.evaluation import sample_metrics, training_lines

        log.info("Lyric metrics: sampling %d lyrics (callbacks.lyrics_metrics=null: off)", self.opts.num_samples)
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            self.metrics = sample_metrics(generator, training_lines(datamodule), self.opts, seed=self.seed)
        seconds = time.perf_counter() - start
        log.info(
            "Lyric metrics of %d samples: %s",
            self.opts.num_samples,
            ", ".join(f"{k} {v:.3f}" for k, v in self.metrics.items()),
        )
        for logger in trainer.loggers:
            logger.log_metrics({f"eval/{_metric_name(k)}": v for k, v in self.metrics.items()}, trainer.global_step)
        self.metrics["phase_samples_s"] = round(seconds, 2)  # in results.json, beside the other phases


def _metric_name(name: str) -> str:
    """`copy rate (>= 4 words)` -> `copy_rate_4`: a TensorBoard tag without spaces or brackets."""
    return "_".join("".join(ch if ch.isalnum() or ch == "-" else " " for ch in name).split())
