"""A training run, from a composed config to its results: what `scripts/train.py` calls, and the tests too.

The steps, in order: check the config; build the trainer (its callbacks and loggers) and the data; the model's
options (resumed: the checkpoint's vocabulary; `init_from`: the pre-trained model's shape); the vocabulary and
the network; fit; test the best checkpoint once (protocol v2); write `results.json` and log the summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from lyricgen.checkpoint import (
    check_resumable,
    copy_pretrained,
    init_from_shape,
    load_checkpoint,
    pretrained_checkpoint,
    read_extras,
)
from lyricgen.cli import lightning_errors
from lyricgen.config import check_config, final_run, plain, typed_keys
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.tokenizer import from_settings
from lyricgen.decoding.templates import mine_templates, templates_to_dict
from lyricgen.devices import training_device
from lyricgen.evaluation import test_best_checkpoint
from lyricgen.files import write_atomically
from lyricgen.loggers import log_hparams_summary
from lyricgen.memory import check_training_fits
from lyricgen.model import LyricsLM
from lyricgen.rnnlm import NetSettings, frequency_cutoffs

log = logging.getLogger("lyricgen.train")


def train(cfg: DictConfig) -> dict:
    """Build data, model and trainer from the config, fit, test the best checkpoint, and report."""
    start = time.perf_counter()
    check_config(cfg, "train")  # types, ranges, required options, accelerators: refused before any work
    final = final_run(cfg)  # data.train_on_val: no validation, the last checkpoint tested
    if final:
        log.info(final)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    trainer, callbacks = build_trainer(cfg)
    datamodule = instantiate(cfg.data)
    model_options, pretrained = model_options_of(cfg, datamodule)
    datamodule.prepare_data()
    datamodule.setup("fit")  # the vocabulary size is needed to build the model
    model = build_model(cfg, datamodule, model_options, pretrained)
    if trainer.is_global_zero:
        datamodule.vocab.save(Path(cfg.paths.output_dir) / "vocab.json")
    phases = {"phase_setup_s": round(time.perf_counter() - start, 2)}  # config, trainer, data, vocabulary, model
    fit_start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    phases["phase_fit_s"] = round(time.perf_counter() - fit_start, 2)  # training, validation and the samples
    result = run_result(trainer, model, datamodule, callbacks, final is not None, start)
    if cfg.get("test", True):  # a trial of a search (hparams_search) never reads the test split: test=false
        cache = OmegaConf.to_container(cfg.cache) if cfg.get("cache") else None
        result.update(test_best_checkpoint(trainer, model, datamodule, cache))  # protocol v2: test once, best by val
    result.update(phases)
    params = {k: v for k, v in plain(cfg).items() if k in ("seed", "model", "data", "trainer")}
    log_hparams_summary(trainer.loggers, params, result)  # one row per run in TensorBoard's HParams tab
    if trainer.is_global_zero:
        write_atomically(Path(cfg.paths.output_dir) / "results.json", json.dumps(result, indent=2).encode("utf-8"))
        log_summary(result, cfg.paths.output_dir)
    return result


def build_trainer(cfg: DictConfig) -> tuple[L.Trainer, list[L.Callback]]:
    """The Trainer with its callbacks (`callbacks.NAME=null`: off) and loggers. Lightning's own refusals of a
    Trainer value come in one line, before any data work. On Apple's GPU the accelerator is named `mps`, also
    when it was `auto`: Lightning's mixed precision takes the device of its autocast from that name."""
    if training_device(cfg.trainer.accelerator) == "mps":
        with open_dict(cfg):
            cfg.trainer.accelerator = "mps"
    with lightning_errors("trainer"):
        callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
        loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return trainer, callbacks


def model_options_of(cfg: DictConfig, datamodule: LyricsDataModule) -> tuple[dict, dict | None]:
    """The `model` options of this run, and the pre-trained checkpoint of `init_from` (else None). Resuming
    (`ckpt_path`): the same model, with the checkpoint's tokeniser and vocabulary. Fine-tuning (`init_from`): the
    pre-trained model's shape (`init_from_shape`), its weights copied in `build_model`, and by default
    (`init_vocab=keep`, as GPT models are fine-tuned) its tokeniser and vocabulary, to which the characters of
    this training split that it lacks are added as new rows; `init_vocab=map`: this run's own vocabulary, the
    rows of the tokens both have copied."""
    options = {k: v for k, v in plain(cfg.model).items() if k != "_target_"}
    if cfg.get("ckpt_path"):
        checkpoint = load_checkpoint(cfg.ckpt_path)
        saved = checkpoint["hyper_parameters"]
        if options.get("cutoffs") is None and saved.get("softmax") == "adaptive":  # the checkpoint's clusters
            options["cutoffs"] = saved.get("cutoffs")
        check_resumable(checkpoint, cfg.ckpt_path, options, datamodule.tokenizer.settings)
        vocab, tokenizer, _ = read_extras(checkpoint)
        datamodule.use_model(from_settings(tokenizer), vocab)
    if not cfg.get("init_from"):
        return options, None
    path = pretrained_checkpoint(cfg.init_from)
    pretrained = load_checkpoint(path)
    keep = cfg.get("init_vocab", "keep") == "keep"
    here = None if keep else datamodule.tokenizer.settings  # keep: the checkpoint's tokeniser, whatever this config's
    options = init_from_shape(pretrained, path, options, typed_keys("model", "cell"), here)
    with open_dict(cfg):  # the config, the hyperparameters and the logs say the shape the run really has
        cfg.model.update(options)
    if keep:
        vocab, tokenizer, _ = read_extras(pretrained)
        datamodule.use_model(from_settings(tokenizer), vocab, new_rows=True)
        log.info(
            "init_from %s: its tokeniser (%s) and vocabulary of %d tokens (init_vocab=keep)",
            path,
            ", ".join(f"{k}={v}" for k, v in tokenizer.items() if k != "model"),
            len(vocab),
        )
    return options, pretrained


def build_model(cfg: DictConfig, datamodule: LyricsDataModule, options: dict, pretrained: dict | None) -> LyricsLM:
    """The LightningModule over the data's vocabulary: an adaptive softmax's cutoffs drawn from the training
    tokens, the memory it needs checked, the n-grams of no_copy and a corpus of ci's tune templates with it,
    and the pre-trained weights of `init_from` copied in."""
    vocab = datamodule.vocab
    net = NetSettings.from_hparams({**options, "vocab_size": len(vocab)})
    if net.softmax == "adaptive" and net.cutoffs is None and not cfg.get("ckpt_path"):
        net = dataclasses.replace(net, cutoffs=frequency_cutoffs(datamodule.train_ids, len(vocab), net.coverage))
        log.info("Adaptive softmax: cutoffs %s, where %s of the training tokens end", net.cutoffs, net.coverage)
    with open_dict(cfg):  # the hyperparameters, the logs and the checkpoint hold the cutoffs the model has
        cfg.model.cutoffs = net.cutoffs
    check_training_fits(net, datamodule.batch_size, datamodule.seq_len, training_device(cfg.trainer.accelerator))
    templates = mine_templates(datamodule.songs("train"))  # tune templates of a corpus of ci (else none)
    model = instantiate(  # _convert_: plain lists (model.cutoffs), so checkpoints load with weights_only
        cfg.model,
        vocab_size=len(vocab),
        vocab=vocab,
        tokenizer=datamodule.tokenizer.settings,
        ngrams=datamodule.training_ngrams(cfg.get("no_copy_max_n", 8)),  # for no_copy
        templates=templates_to_dict(templates) if templates else None,
        _convert_="all",
    )
    if pretrained is not None:
        shared = copy_pretrained(model.net, pretrained, vocab)
        log.info(
            "init_from %s: weights copied, with the rows of %d of this vocabulary's %d tokens (the others start fresh)",
            cfg.init_from,
            shared,
            len(vocab),
        )
    model.trained_on_val = datamodule.train_on_val  # in its checkpoints: evaluate.py then scores test only
    return model


def run_result(
    trainer: L.Trainer, model: LyricsLM, datamodule: LyricsDataModule, callbacks: list, final: bool, start: float
) -> dict:
    """What the run did: the model, its size, epochs and steps, its best (or final) checkpoint with its val
    figures (bits per character: every character of val counted, what a search minimises), the lyric measures of
    the callbacks."""
    result = {
        "model": model.hparams.cell,
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    ckpt = trainer.checkpoint_callback
    if ckpt is not None and ckpt.best_model_path and final:  # nothing monitored: the last epoch's
        result.update(final_ckpt=ckpt.best_model_path)
    elif ckpt is not None and ckpt.best_model_path and ckpt.best_model_score is not None:
        result.update(best_ckpt=ckpt.best_model_path, best_val_ppl=float(ckpt.best_model_score))
        if "val" in datamodule.chars:
            result["best_val_bpc"] = datamodule.chars["val"].bpc(math.log(result["best_val_ppl"]))
    for cb in callbacks:
        result.update(getattr(cb, "metrics", {}))  # LyricsMetrics: novelty, distinct-n, ...
    return result


def log_summary(result: dict, output_dir: str) -> None:
    """The run's figures in the log: its best checkpoint, the test figures, the cache's, the phases' times."""
    if "best_ckpt" in result:
        bpc = f", bpc {result['best_val_bpc']:.3f} every character counted" if "best_val_bpc" in result else ""
        log.info("Best checkpoint: %s (val/ppl %.2f%s)", result["best_ckpt"], result["best_val_ppl"], bpc)
    if "final_ckpt" in result:
        log.info("Final checkpoint: %s (trained on train + val; no validation)", result["final_ckpt"])
    if "test_ppl" in result:
        log.info(
            "Test (%s checkpoint): loss %.3f nats per token, ppl %.2f, bpc %.3f, <unk> share %.3f",
            "final" if "final_ckpt" in result else "best",
            result.get("test_loss", float("nan")),
            result["test_ppl"],
            result.get("test_bpc", float("nan")),
            result.get("unk_share_test", float("nan")),
        )
    if "test_ppl_cache" in result and not result["cache_lambda"]:
        log.info(
            "Continuous cache: no setting helped on val; test read as one stream: ppl %.2f",
            result["test_ppl_stream"],
        )
    elif "test_ppl_cache" in result:
        log.info(
            "Test with the continuous cache (window %d, theta %g, lambda %g, chosen on val): ppl %.2f, bpc %.3f",
            result["cache_window"],
            result["cache_theta"],
            result["cache_lambda"],
            result["test_ppl_cache"],
            result.get("test_bpc_cache", float("nan")),
        )
    order = ("setup", "fit", "samples", "test", "stream_cache")  # samples: at the end of fit, inside it
    times = [f"{name} {result[f'phase_{name}_s']:.1f} s" for name in order if f"phase_{name}_s" in result]
    log.info("Phases: %s", ", ".join(times))
    log.info("Run directory: %s (%.0f s)", output_dir, result["wall_s"])
