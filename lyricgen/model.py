"""The LightningModule: holds an `RNNLM`, adds the steps, the optimiser, logging and the vocabulary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from lyricgen.checkpoint import read_extras, read_templates, trained_on_val, write_extras
from lyricgen.data.datasets import IGNORE_INDEX
from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import RNNLM, Hidden, NetSettings, detach_hidden
from lyricgen.schema import check, option

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
SCHEDULERS = ("none", "cosine", "plateau")


@dataclass(frozen=True)
class OptimSettings:
    """How the network is trained (the `model` group's options that are not `NetSettings`)."""

    optimizer: str = option("adamw", choices=tuple(OPTIMIZERS))
    lr: float = option(2e-3, gt=0)
    weight_decay: float = option(0.0, ge=0)
    scheduler: str = option("none", choices=SCHEDULERS)
    ar: float = option(0.0, ge=0, note="activation regularisation; 0: off")
    tar: float = option(0.0, ge=0, note="temporal activation regularisation; 0: off")
    stateful: bool = option(False, note="set by data.stateful")

    def check(self) -> OptimSettings:
        check(asdict(self), OptimSettings, "model.")
        return self


NET_FIELDS = frozenset(f.name for f in fields(NetSettings))
OPTIM_FIELDS = frozenset(f.name for f in fields(OptimSettings))


class LyricsLM(L.LightningModule):
    """Word-level lyrics model. Hyperparameters are plain scalars, so a checkpoint alone rebuilds it.

    `hparams` are the fields of `NetSettings` (`vocab_size`, `cell`, `emb_dim`, ...; the network) and of
    `OptimSettings` (`optimizer`, `lr`, ...; its training), each saved as a scalar hyperparameter.
    `vocab`, `tokenizer` (the tokeniser settings) and `ngrams` (the training split's n-gram index, for
    `no_copy`) and `templates` (the tune templates of a corpus of ci, a plain dict) are not hyperparameters:
    they travel in the checkpoint (see `lyricgen.checkpoint`).
    """

    def __init__(
        self,
        vocab: Vocab | None = None,
        tokenizer: dict | None = None,
        ngrams: NgramIndex | None = None,
        templates: dict | None = None,
        **hparams,
    ) -> None:
        super().__init__()
        unknown = sorted(set(hparams) - NET_FIELDS - OPTIM_FIELDS)
        if unknown:
            raise LyricgenError(
                f"unknown model option(s) {', '.join(unknown)}; "
                f"the options are {', '.join(sorted(NET_FIELDS | OPTIM_FIELDS))}"
            )
        net = NetSettings.from_hparams(hparams)
        self.optim = OptimSettings(**{k: v for k, v in hparams.items() if k in OPTIM_FIELDS}).check()
        self.save_hyperparameters({**asdict(net), **asdict(self.optim)})  # plain scalars, defaults included
        self.net = RNNLM(net)
        self.vocab = vocab
        self.tokenizer_settings = dict(tokenizer or {})  # a plain dict: checkpoints load with weights_only
        self.ngrams = ngrams
        self.templates = templates
        self.trained_on_val = False  # set by scripts/train.py for a final run (data.train_on_val); saved with it
        self.val_loss, self.val_acc = MeanMetric(), MeanMetric()
        self.test_loss, self.test_acc = MeanMetric(), MeanMetric()
        self._carried: Hidden | None = None  # hidden state carried across batches when stateful

    def init_hidden(self, batch_size: int) -> Hidden:
        return self.net.init_hidden(batch_size, self.device)

    def forward(self, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        return self.net(tokens, hidden)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        hidden = None
        carry = stage == "train" and self.hparams.stateful
        if carry and self._carried is not None:
            hidden = self._carried
        real = y != IGNORE_INDEX
        n_tokens = real.sum()
        if self.net.adaptive:
            raw, dropped, hidden = self.net.features(x, hidden)
            # the exact log-probabilities of the targets; training computes only the clusters they fall in
            feats, targets = dropped[real], y[real]
            loss = -self.net.adaptive_head(feats, targets).output.sum() / n_tokens
            acc = (
                None
                if stage == "train"
                else (self.net.adaptive_head(feats, method="predict") == targets).sum() / n_tokens
            )
        else:
            logits, hidden, (raw, dropped) = self.net(x, hidden, return_outputs=True)
            # Sum over tokens, then divide by the number of real (unpadded) targets: a token average.
            loss = (
                F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
                / n_tokens
            )
            # next-token accuracy: the share of targets that are the model's most likely token (the toys' curve);
            # in training only on the steps the loggers write (its argmax over the vocabulary is 5% of a step)
            logged = stage != "train" or self._logs_this_step()
            acc = ((logits.argmax(-1) == y) & real).sum() / n_tokens if logged else None
        if carry:
            self._carried = detach_hidden(hidden)
        if stage == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=x.size(0))
            if acc is not None:  # (the adaptive softmax does not score every word in training)
                self.log("train/acc", acc, on_step=True, on_epoch=False, batch_size=x.size(0))
            return loss + self.activation_penalty(raw, dropped)
        else:
            getattr(self, f"{stage}_loss").update(loss, weight=n_tokens)
            getattr(self, f"{stage}_acc").update(acc, weight=n_tokens)
        return loss

    def _logs_this_step(self) -> bool:
        """Whether Lightning's loggers write this training step's metrics (every `trainer.log_every_n_steps`
        steps, and every step of `fast_dev_run`), as its logger connector decides it; True outside a trainer."""
        trainer = self._trainer
        if trainer is None:
            return True
        connector = getattr(trainer, "_logger_connector", None)  # Lightning's own rule, not a copy of it
        return bool(getattr(connector, "should_update_logs", True) or trainer.fast_dev_run)

    def activation_penalty(self, raw: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
        """AWD-LSTM's AR (ar * mean square of the dropped last-layer outputs) plus TAR (tar * mean square
        of the change of the raw outputs from one step to the next); zero when both are 0."""
        hp = self.hparams
        penalty = raw.new_zeros(())
        if hp.ar:
            penalty = penalty + hp.ar * dropped.pow(2).mean()
        if hp.tar and raw.size(1) > 1:
            penalty = penalty + hp.tar * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
        return penalty

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def _log_epoch(self, stage: str) -> None:
        # The token-weighted mean over the whole split (reduced over every process), then its exp:
        # the perplexity of the split, not a mean of per-batch perplexities.
        metric, acc = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        loss = metric.compute()
        metric.reset()
        self.log(f"{stage}/acc", acc.compute(), sync_dist=True)
        acc.reset()
        # compute() already reduced over processes; sync_dist only averages equal values (and is the DDP idiom)
        self.log(f"{stage}/loss", loss, sync_dist=True)
        self.log(f"{stage}/ppl", torch.exp(loss), prog_bar=True, sync_dist=True)
        # bits per character, every character counted: the datamodule knows the characters the predicted tokens
        # stand for and the bits to spell out its <unk>s (lyricgen.data.encoding.SplitChars)
        chars = getattr(getattr(self.trainer, "datamodule", None), "chars", {}).get(stage)
        if chars:
            self.log(f"{stage}/bpc", chars.bpc(loss), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_train_epoch_start(self) -> None:
        self._carried = None  # each epoch starts every stream from the zero state

    def configure_optimizers(self):
        hp = self.hparams
        kwargs = {"lr": hp.lr, "weight_decay": hp.weight_decay}
        optimizer = OPTIMIZERS[hp.optimizer](self.parameters(), **kwargs)
        if hp.scheduler == "cosine":
            total = max(1, int(self.trainer.estimated_stepping_batches))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=hp.lr / 20)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=0)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "monitor": "val/ppl"}}
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.vocab is None:
            raise RuntimeError("LyricsLM.vocab must be set before saving a checkpoint")
        write_extras(checkpoint, self.vocab, self.tokenizer_settings, self.ngrams, self.trained_on_val, self.templates)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.vocab, self.tokenizer_settings, self.ngrams = read_extras(checkpoint)
        self.templates = read_templates(checkpoint)
        self.trained_on_val = trained_on_val(checkpoint)
