"""The scripts' configs, checked at start-up in one place: every option's type and range, required options
(`???`), and accelerators that are really there. Each script calls `check_config(cfg, script)` before it
builds anything, so a bad value ends in one line that names the option, the value, what it takes and
the fix (exit code 2), never in a traceback or a run that does something else.

Each script's checks are a list (`CHECKS`); the machine's devices come from `lyricgen.devices`.
The option schemas are the settings dataclasses of the library (`NetSettings`, `OptimSettings`,
`DecodingOptions`, `DataOptions`) and, for what only the scripts have, the dataclasses below; see
`lyricgen.schema` for the checking itself.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from lyricgen.decoding.options import DecodingOptions
from lyricgen.devices import check_accelerator, pick_device
from lyricgen.errors import LyricgenError
from lyricgen.prosody import RHYME_RULES
from lyricgen.schema import check, option

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# The precisions Lightning 2.x takes (its precision literal; tests/test_reliability.py holds them the same).
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
PRECISIONS += ("32", "16", "bf16", "64", 32, 16, 64)  # Lightning's short forms


@dataclass
class TrainOptions:
    """The top level of conf/train.yaml."""

    seed: int | None = option(42, ge=0, le=2**32 - 1, note="Lightning's seed_everything takes 32 bits")
    ckpt_path: str | None = option(None, example="outputs/DATE/TIME/checkpoints/last.ckpt")
    init_from: str | None = option(None, example="runs/songci_char")
    init_vocab: str = option("keep", choices=("keep", "map"), note="init_from's vocabulary, or this run's")
    test: bool = option(True, note="false: the test split is not read (a search's trials)")
    no_copy_max_n: int = option(8, ge=2, le=16)


@dataclass
class TrainerOptions:
    """The options of Lightning's Trainer that the configs set or a user is likely to type (others are
    Lightning's to check)."""

    accelerator: str = option("auto", choices=ACCELERATORS)
    devices: int | str | list[int] = option(1, note="a number, auto, -1 (all) or a list of GPU ids")
    num_nodes: int = option(1, ge=1)
    max_epochs: int | None = option(8, ge=-1, note="-1: no limit")
    max_steps: int = option(-1, ge=-1, note="-1: no limit")
    min_epochs: int | None = option(None, ge=0)
    gradient_clip_val: float | None = option(0.5, ge=0)
    log_every_n_steps: int = option(20, ge=1)
    num_sanity_val_steps: int = option(2, ge=-1, note="-1: all")
    val_check_interval: int | float | None = option(None, gt=0)
    check_val_every_n_epoch: int | None = option(1, ge=1)
    accumulate_grad_batches: int = option(1, ge=1)
    limit_train_batches: int | float | None = option(None, ge=0)
    limit_val_batches: int | float | None = option(None, ge=0)
    limit_test_batches: int | float | None = option(None, ge=0)
    overfit_batches: int | float = option(0, ge=0, note="a number of batches, or a fraction of the split")
    fast_dev_run: bool | int = option(False, ge=0)
    detect_anomaly: bool = option(False)
    enable_progress_bar: bool = option(True)
    enable_checkpointing: bool = option(True)
    deterministic: bool | str = option(False)
    benchmark: bool | None = option(None)
    precision: str | int | None = option(None, choices=PRECISIONS, example="bf16-mixed")
    strategy: str = option("auto", example="ddp", note="auto or a name in Lightning's StrategyRegistry")


@dataclass
class CacheOptions:
    """The continuous cache's grid (conf/cache/default.yaml)."""

    windows: list[int] = option(default_factory=list, ge=1)
    thetas: list[float] = option(default_factory=list, gt=0)
    lambdas: list[float] = option(default_factory=list, ge=0, lt=1)
    max_tokens: int | None = option(20_000, ge=2, note="each split read up to its first max_tokens; null: all")


@dataclass
class TokenizerOptions:
    """The settings of the tokenisers (conf/tokenizer/)."""

    hmm: bool = option(True)
    lowercase: bool = option(False)
    char_fallback: bool = option(True, note="jieba, char: a word outside the vocabulary as its characters")
    vocab_size: int = option(8000, ge=16, note="sentencepiece: the pieces to learn")
    character_coverage: float = option(0.9995, gt=0, le=1, note="sentencepiece: the characters that are pieces")


@dataclass
class RunOptions:
    """What generate, evaluate and critic have beside the decoding options."""

    ckpt_path: str | None = option(None, example="outputs/DATE/TIME/checkpoints/last.ckpt")
    runs_dir: str = option("outputs")
    start_word: str | int | float | None = option("")  # Hydra reads start_word=520 as a number
    seed: int | None = option(None, ge=0, le=2**63 - 1, example=1, note="torch's generators take 64 bits")
    device: str = option("auto", note="auto, cpu, cuda or cuda:N")
    accelerator: str = option("auto", choices=ACCELERATORS)
    tunes: int = option(10, ge=0, note="evaluate: the commonest tunes of a model trained on ci")


@dataclass
class CriticOptions:
    path: str = option(example="my_lyrics.txt")
    rhyme_rule: str = option("shisan", choices=RHYME_RULES)
    copy_n: int = option(4, ge=2, le=8)


# What each required option (`???` in a config) is, for the line that asks for it.
REQUIRED = {
    "data.path": "a UTF-8 text file of lyrics or a folder of .txt files, e.g. data.path=my_lyrics.txt",
    "path": "the text file of lyrics to score, e.g. path=my_lyrics.txt",
}


def _values(node: DictConfig, schema: type) -> dict:
    """The keys of `node` that `schema` knows, each resolved (interpolations) on its own."""
    names = schema.__dataclass_fields__
    return {k: node[k] for k in node if k in names}


def check_required(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        what = REQUIRED.get(key, f"give {key}=VALUE")
        raise LyricgenError(f"{key} is required and not set (it is ??? in the config); give {what}")


def _train_options(cfg: DictConfig) -> None:
    check(_values(cfg, TrainOptions), TrainOptions)
    if cfg.get("init_from") and cfg.get("ckpt_path"):
        raise LyricgenError(
            "give init_from (start from a model's weights) or ckpt_path (resume a run), not both; "
            "e.g. init_from=runs/songci_char"
        )


def _trainer_options(cfg: DictConfig) -> None:
    check(_values(cfg.trainer, TrainerOptions), TrainerOptions, "trainer.")


def _model_options(cfg: DictConfig) -> None:
    from lyricgen.model import OptimSettings
    from lyricgen.rnnlm import NetSettings

    for schema in (NetSettings, OptimSettings):
        check(_values(cfg.model, schema), schema, "model.")


def _callback_decoding(cfg: DictConfig) -> None:
    for name, callback in (cfg.get("callbacks") or {}).items():
        if callback and "decoding" in callback:
            DecodingOptions.from_mapping(callback.decoding).check(f"callbacks.{name}.decoding.")


def _trainer_devices(cfg: DictConfig) -> None:
    check_trainer(cfg.trainer)


def _run_options(cfg: DictConfig) -> None:
    check(_values(cfg, RunOptions), RunOptions)


def _decoding(cfg: DictConfig) -> None:
    DecodingOptions.from_mapping(cfg).check()


def _critic_options(cfg: DictConfig) -> None:
    check(_values(cfg, CriticOptions), CriticOptions)


def _device(cfg: DictConfig) -> None:
    pick_device(cfg.device)


def _accelerator(cfg: DictConfig) -> None:
    check_accelerator(cfg.accelerator, 1, "")


def _data_options(cfg: DictConfig) -> None:
    from lyricgen.data.datamodule import DataOptions

    check(_values(cfg.data, DataOptions), DataOptions, "data.")
    if cfg.data.get("tokenizer"):
        check(_values(cfg.data.tokenizer, TokenizerOptions), TokenizerOptions, "data.tokenizer.")
    if cfg.get("cache"):
        check(_values(cfg.cache, CacheOptions), CacheOptions, "cache.")


# Each script's checks, in the order they run: the first refusal ends the start (the Trainer's values are
# refused before the data is touched, a decoding option before a checkpoint is loaded).
CHECKS: dict[str, list[Callable[[DictConfig], None]]] = {
    "train": [_train_options, _trainer_options, _model_options, _callback_decoding, _trainer_devices, _data_options],
    "generate": [_run_options, _decoding, _device],
    "evaluate": [_run_options, _decoding, _accelerator, _data_options],
    "critic": [_run_options, _critic_options, _device],
}


def check_config(cfg: DictConfig, script: str) -> None:
    """Refuse a config with a required option missing, a value of the wrong type or out of range, or an
    accelerator that is not there. `script` is one of `CHECKS`: train, generate, evaluate or critic."""
    check_required(cfg)
    for check_part in CHECKS[script]:
        check_part(cfg)


def typed_keys(group: str, group_key: str) -> set[str]:
    """The options of a config group given on the command line: `model.hidden_size=512` -> hidden_size, and
    `model=gru` -> `group_key` (cell). Empty outside a Hydra run (a config composed in Python)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    keys = set()
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == group:
            keys.add(group_key)
        elif key.startswith(f"{group}."):
            keys.add(key.removeprefix(f"{group}."))
    return keys


def final_run(cfg: DictConfig) -> str | None:
    """`data.train_on_val=true`: a final run of settings tuned on val, which trains on the validation lines too,
    so nothing is left to validate on, stop early by, pick a best epoch by, or tune the cache on. Switch off the
    validation loop, early stopping and the cache, and let the checkpoint callback keep the last epoch (the
    one `test_best_checkpoint` tests); return the line that says so, or None for an ordinary run."""
    if not cfg.data.get("train_on_val"):
        return None
    if cfg.model.get("scheduler") == "plateau":
        raise LyricgenError(
            "model.scheduler=plateau lowers the learning rate when val/ppl stalls, and a final run "
            "(data.train_on_val=true) has no validation: use model.scheduler=cosine or none, or data.train_on_val=false"
        )
    with open_dict(cfg):
        cfg.trainer.limit_val_batches = 0
        callbacks = cfg.get("callbacks") or {}
        if callbacks.get("early_stopping"):
            cfg.callbacks.early_stopping = None
        if callbacks.get("model_checkpoint"):  # the latest epoch, saved at the end of every training epoch
            checkpoint = cfg.callbacks.model_checkpoint
            checkpoint.monitor, checkpoint.save_top_k, checkpoint.save_on_train_epoch_end = None, 1, True
            checkpoint.filename = "final-epoch{epoch:02d}"
        cfg.cache = None
    return (
        "data.train_on_val=true: training on the training and validation lines; no validation, early stopping "
        "or cache tuning (nothing is held out for them); the last checkpoint is tested"
    )


def _devices_ok(devices) -> bool:
    """A Trainer's `devices`: a number, auto, -1, a list of ids, or ids as text ("0,1")."""
    if isinstance(devices, str):
        text = devices.strip()
        return text == "auto" or all(d.strip().lstrip("-").isdigit() for d in text.split(",") if d.strip())
    return True  # numbers and lists of integers: the schema's types


def check_trainer(trainer: DictConfig) -> None:
    """The Trainer's values that the schema's types cannot judge: its keys (the arguments of Lightning's
    Trainer), `devices` as text, `strategy` by name, and the devices this machine has."""
    import inspect

    from lightning.pytorch import Trainer
    from lightning.pytorch.strategies import StrategyRegistry

    known = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    unknown = sorted(k for k in trainer if k not in known and k != "_target_")
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f"; did you mean {', '.join('trainer.' + c for c in close)}?" if close else ""
        raise LyricgenError(f"trainer.{unknown[0]} is not an option of Lightning's Trainer{hint}")
    devices = trainer.get("devices", 1)
    if not _devices_ok(devices):
        raise LyricgenError(
            f"trainer.devices={devices!r} is not a number of devices; trainer.devices takes a number >= 1, "
            "-1 (all), auto or a list of GPU ids; e.g. trainer.devices=1"
        )
    strategies = ("auto", *StrategyRegistry.available_strategies())
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, str) and strategy not in strategies:
        close = difflib.get_close_matches(strategy, strategies, n=3)
        raise LyricgenError(
            f"trainer.strategy={strategy!r} is not a strategy Lightning knows; use auto, ddp (several processes) "
            f"or another of Lightning's StrategyRegistry{' (nearest: ' + ', '.join(close) + ')' if close else ''}"
        )
    device = check_accelerator(trainer.accelerator, devices, "trainer.")
    if device == "mps":
        check_mps_precision(trainer.get("precision"))


def check_mps_precision(precision) -> None:
    """Refuse a precision that Apple's GPU cannot train in: float64 (Metal has none), and bfloat16 before
    macOS 14 (torch refuses it there, deep inside the first step)."""
    import torch

    text = str(precision or "32-true")
    if text.startswith("64"):
        raise LyricgenError(
            f"trainer.precision={precision}: Apple's GPU (mps) has no float64; use trainer.precision=32-true, "
            "or trainer.accelerator=cpu for float64"
        )
    if text.startswith("bf16") and not torch.backends.mps.is_macos_or_newer(14, 0):
        raise LyricgenError(
            f"trainer.precision={precision}: bfloat16 on Apple's GPU (mps) needs macOS 14 or newer; use "
            "trainer.precision=32-true or 16-mixed"
        )


def plain(node) -> Mapping:
    """A config node as plain Python values (resolved)."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def check_run_data_config(data: DictConfig, path: str | Path) -> DictConfig:
    """A run's saved data settings (`<run>/.hydra/config.yaml`, read back by evaluate.py and the critic),
    refused when a `_target_` in them is not a lyricgen class: that file is anyone's to edit who can write
    into the run folder, and `instantiate` calls what it names (`builtins.open` truncates a file; Hydra's
    own blocklist stops only a few such names)."""
    foreign = _foreign_targets(OmegaConf.to_container(data, resolve=False))
    if foreign:
        raise LyricgenError(
            f"{path} names {', '.join(foreign)} as data, which is not a lyricgen class; lyricgen never calls "
            "it: restore the run's data settings (e.g. _target_: lyricgen.data.datamodule.LyricsDataModule)"
        )
    return data


def run_data_config(ckpt_path: str | Path) -> tuple[DictConfig | None, Path]:
    """The data settings saved by the checkpoint's training run, checked by `check_run_data_config`, and the
    file they come from (`<run>/.hydra/config.yaml`); None when that run has no such file."""
    from lyricgen.checkpoint import run_dir_of

    path = run_dir_of(ckpt_path) / ".hydra" / "config.yaml"
    if not path.is_file():
        return None, path
    return check_run_data_config(OmegaConf.load(path).data, path), path


def _foreign_targets(node) -> list[str]:
    """The `_target_`s of a (nested) config that are not lyricgen classes."""
    if isinstance(node, dict):
        found = [t for v in node.values() for t in _foreign_targets(v)]
        target = node.get("_target_")
        return found if target is None or _is_lyricgen_class(str(target)) else [str(target), *found]
    if isinstance(node, list):
        return [t for v in node for t in _foreign_targets(v)]
    return []


def _is_lyricgen_class(target: str) -> bool:
    """A class defined in lyricgen (not a function, nor what lyricgen imports: `lyricgen.checkpoint.torch.load`
    is torch's); only lyricgen's own modules are imported to find out."""
    module, _, name = target.rpartition(".")
    if module != "lyricgen" and not module.startswith("lyricgen."):
        return False
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type) and found.__module__.startswith("lyricgen.")
