"""The one place that knows the checkpoint layout: what lyricgen adds to Lightning's file, and how a
network, its vocabulary, tokeniser settings and n-gram index are read back without Lightning.

A lyricgen checkpoint is a Lightning checkpoint with
- `hyper_parameters`: the LightningModule's scalar arguments (the network's among them);
- `state_dict`: the network's weights under the prefix `net.`;
- `lyricgen`: {"vocab": {"tokens": [...]}, "tokenizer": {...}, "ngrams": {...} (optional), "templates":
  {"rule": ..., "tunes": {tune: {...}}} (optional: the tune templates of a corpus of ci,
  `lyricgen.decoding.templates`)}.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import RNNLM, NetSettings

EXTRA_KEY = "lyricgen"
NET_PREFIX = "net."


def write_extras(
    checkpoint: dict,
    vocab: Vocab,
    tokenizer: dict,
    ngrams: NgramIndex | None,
    trained_on_val: bool = False,
    templates: dict | None = None,
) -> None:
    """Put the vocabulary, tokeniser settings, n-gram index and tune templates (a plain dict) into a checkpoint
    being saved, and whether its run trained on the validation lines (`data.train_on_val`: then they are not
    held out for it)."""
    extra = {"vocab": vocab.to_dict(), "tokenizer": dict(tokenizer)}
    if ngrams is not None:
        extra["ngrams"] = ngrams.to_dict()
    if templates:
        extra["templates"] = templates
    if trained_on_val:
        extra["trained_on_val"] = True
    checkpoint[EXTRA_KEY] = extra


def trained_on_val(checkpoint: dict) -> bool:
    """Whether the checkpoint's run trained on the validation lines (`data.train_on_val`)."""
    return bool((checkpoint.get(EXTRA_KEY) or {}).get("trained_on_val", False))


def read_templates(checkpoint: dict) -> dict | None:
    """The tune templates of a checkpoint (a plain dict, `lyricgen.decoding.templates`), None if it has none."""
    return (checkpoint.get(EXTRA_KEY) or {}).get("templates")


def read_extras(checkpoint: dict) -> tuple[Vocab, dict, NgramIndex | None]:
    """The vocabulary, tokeniser settings and n-gram index (None in checkpoints written before it)."""
    extra = checkpoint.get(EXTRA_KEY)
    if extra is None:
        raise LyricgenError("this checkpoint has no lyricgen vocabulary; was it written by lyricgen?")
    ngrams = NgramIndex.from_dict(extra["ngrams"]) if "ngrams" in extra else None
    return Vocab.from_dict(extra["vocab"]), dict(extra.get("tokenizer") or {}), ngrams


def load_checkpoint(path: str | Path) -> dict:
    """Read a lyricgen checkpoint onto the CPU, with errors that say what is wrong with the file."""
    path = Path(path)
    if path.is_dir():
        raise LyricgenError(
            f"checkpoint {path} is a folder, not a .ckpt file; pass ckpt_path=PATH to a file in a run's checkpoints/"
        )
    if not path.is_file():
        raise LyricgenError(
            f"checkpoint {path} does not exist; pass ckpt_path=PATH to a .ckpt file from a training run"
        )
    try:  # weights_only: a file built to run code when unpickled is refused, never run
        with warnings.catch_warnings():  # torch warns of a legacy (non-zip) file before refusing it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling arbitrary bytes can fail in many ways (IndexError, KeyError, ...)
        raise LyricgenError(f"{path} is not a readable PyTorch checkpoint ({_load_failure(e, path)})") from None
    if (
        not isinstance(ckpt, dict)
        or EXTRA_KEY not in ckpt
        or "hyper_parameters" not in ckpt
        or "state_dict" not in ckpt
    ):
        raise LyricgenError(f"{path} is not a lyricgen checkpoint (no vocabulary or hyperparameters in it)")
    return ckpt


def _load_failure(e: Exception, path: Path) -> str:
    """Why torch.load refused a file, in words that fit a file a user passed."""
    text = str(e)
    with open(path, "rb") as f:
        cut_zip = f.read(4) == b"PK\x03\x04" and not zipfile.is_zipfile(path)  # a checkpoint's start, no end
    if cut_zip or "central directory" in text or "zip archive" in text:
        return "it is truncated or not a zip archive: a copy that did not finish, or another kind of file"
    if "Weights only load failed" in text or isinstance(e, pickle.UnpicklingError):
        return (
            "it holds Python objects beyond tensors and plain values, which lyricgen never unpickles: "
            "they could run code"
        )
    reason = text.strip().splitlines() or [type(e).__name__]
    return reason[0][:100]


def build_net(checkpoint: dict) -> RNNLM:
    """The plain network of a checkpoint, with its weights (no Lightning needed)."""
    net = RNNLM(NetSettings.from_hparams(checkpoint["hyper_parameters"]))
    net.load_state_dict(net_state(checkpoint))
    return net


def net_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The network's weights in a checkpoint, without Lightning's `net.` prefix."""
    return {k.removeprefix(NET_PREFIX): v for k, v in checkpoint["state_dict"].items() if k.startswith(NET_PREFIX)}


def training_runs(runs_dir: str | Path = "outputs") -> list[Path]:
    """The training runs under `runs_dir` (directories holding `checkpoints/*.ckpt`), newest first:
    by the time of their newest checkpoint."""
    newest: dict[Path, float] = {}
    for p in Path(runs_dir).glob("**/checkpoints/*.ckpt"):
        if p.is_file():
            run = p.parent.parent
            newest[run] = max(newest.get(run, 0.0), p.stat().st_mtime)
    return sorted(newest, key=newest.__getitem__, reverse=True)


def best_checkpoint_of(run_dir: str | Path) -> Path:
    """A run's best checkpoint (`best-*.ckpt`, or `final-*.ckpt` of a run without validation; the newest if
    several), else `last.ckpt`, else its newest."""
    in_run = sorted((Path(run_dir) / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not in_run:
        raise LyricgenError(f"{run_dir} holds no checkpoints/*.ckpt; pick another run or train one")
    best = [p for p in in_run if p.name.startswith(("best", "final"))]
    return (best or [p for p in in_run if p.name == "last.ckpt"] or in_run)[-1]


def saved_tokenizer(checkpoint: dict) -> dict:
    """The tokeniser settings of a checkpoint (checkpoints made before named tokenisers: jieba)."""
    return {"name": "jieba", **read_extras(checkpoint)[1]}


def tokenizer_diffs(checkpoint: dict, tokenizer: Mapping) -> list[tuple[str, object, object]]:
    """(setting, in the checkpoint, here) for each tokeniser setting (name, hmm, lowercase, char_fallback) that
    differs (a checkpoint made before char fallback has none)."""
    saved = {"char_fallback": False, **saved_tokenizer(checkpoint)}
    return [
        (k, saved[k], tokenizer[k])
        for k in ("name", "hmm", "lowercase", "char_fallback")
        if k in saved and k in tokenizer and saved[k] != tokenizer[k]
    ]


def check_resumable(checkpoint: dict, ckpt_path: str | Path, model: Mapping, tokenizer: Mapping) -> None:
    """Refuse to resume a checkpoint whose model (the `model` options it was trained with) or tokeniser
    differs from this run's, listing every difference."""
    hp = checkpoint["hyper_parameters"]
    diffs = [f"model.{k}={hp[k]} in the checkpoint, {v} here" for k, v in model.items() if k in hp and hp[k] != v]
    diffs += [
        f"tokenizer {k} {saved} in the checkpoint, {here} here"
        for k, saved, here in tokenizer_diffs(checkpoint, tokenizer)
    ]
    if diffs:
        raise LyricgenError(
            f"ckpt_path={ckpt_path} holds another model than this config: {'; '.join(diffs)}; resume with the "
            "settings of the run that wrote it (its .hydra/overrides.yaml), or leave out ckpt_path to start anew"
        )


def find_checkpoint(runs_dir: str | Path = "outputs") -> Path:
    """The best checkpoint (`best-*.ckpt` or `final-*.ckpt`, else `last.ckpt`) of the newest training run under
    `runs_dir`."""
    runs = training_runs(runs_dir)
    if not runs:
        raise LyricgenError(
            f"no training run found under {runs_dir}/; train one (python scripts/train.py) or pass ckpt_path=PATH"
        )
    return best_checkpoint_of(runs[0])


def run_dir_of(ckpt_path: str | Path) -> Path:
    """The training run directory of a checkpoint (`<run>/checkpoints/x.ckpt` -> `<run>`)."""
    return Path(ckpt_path).resolve().parent.parent


# The network's shape: what `init_from` takes from the pre-trained checkpoint (a fine-tuning run may change
# the rest of the model options: dropouts and the optimiser's).
SHAPE_FIELDS = ("cell", "emb_dim", "hidden_size", "num_layers", "tie_weights", "nonlinearity", "locked_dropout")
# An adaptive softmax's clusters follow its own vocabulary's frequency ranks, so a run started from one gets a
# full softmax whose rows are the adaptive head's (`_output_rows`); a full softmax is kept as it is.
HEAD_FIELDS = ("softmax", "cutoffs", "div_value", "head_bias")
VOCAB_ROWS = ("embedding.weight", "head.weight", "head.bias")  # one row a token


def pretrained_checkpoint(path: str | Path) -> Path:
    """`init_from`: a .ckpt file, or a run directory (its best checkpoint, as `best_checkpoint_of`)."""
    path = Path(path)
    if path.is_dir():
        return best_checkpoint_of(path)
    if not path.is_file():
        raise LyricgenError(
            f"init_from={path} does not exist; give a .ckpt or a run directory, e.g. pre-train one with "
            "python scripts/train.py experiment=songci_char hydra.run.dir=runs/songci_char"
        )
    return path


def init_from_shape(
    checkpoint: dict, path: str | Path, model: Mapping, typed: set[str], tokenizer: Mapping | None
) -> dict:
    """The model options of a run that starts from a pre-trained checkpoint: the shape (`SHAPE_FIELDS`) is the
    checkpoint's, the rest this config's. A shape option typed on the command line (`typed`) that differs, or
    another tokeniser than `tokenizer` (None: the checkpoint's is used), is refused with the differences."""
    hp = NetSettings.from_hparams(checkpoint["hyper_parameters"]).as_hparams()
    shape = {k: hp[k] for k in SHAPE_FIELDS}
    converted = hp["softmax"] != "full"  # an adaptive head becomes a full softmax (`_output_rows`)
    shape.update({"softmax": "full", "cutoffs": None} if converted else {k: hp[k] for k in HEAD_FIELDS})
    diffs = [
        f"model.{k}={model.get(k)} here, {shape[k]} in the checkpoint"
        + (" (a model started from an adaptive softmax has a full one)" if converted and k in HEAD_FIELDS else "")
        for k in shape
        if k in typed and model.get(k) != shape[k]
    ]
    tokenizer_changes = tokenizer_diffs(checkpoint, tokenizer) if tokenizer is not None else []
    diffs += [
        f"tokenizer{'' if k == 'name' else ' ' + k}={here} here, {saved} in the checkpoint"
        for k, saved, here in tokenizer_changes
    ]
    if diffs:
        name = saved_tokenizer(checkpoint)["name"]
        fix = f"use tokenizer={name}" if tokenizer and name != tokenizer.get("name") else "leave out those options"
        raise LyricgenError(
            f"init_from={path} does not fit this run: {'; '.join(diffs)}; the model's shape and tokeniser come from "
            f"the checkpoint: {fix}"
        )
    return {**model, **shape}


def copy_pretrained(net: RNNLM, checkpoint: dict, vocab: Vocab) -> int:
    """Copy a pre-trained checkpoint's weights into `net`, a network of the same shape over `vocab`: every
    tensor that does not depend on the vocabulary as it is, and of the embedding and output rows those of the
    tokens both vocabularies have (the others keep their fresh initialisation). Returns how many tokens were
    shared."""
    old = read_extras(checkpoint)[0]
    pairs = [(old.stoi[t], i) for i, t in enumerate(vocab.itos) if t in old.stoi]
    src = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    dst = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    state = net.state_dict()
    pretrained = net_state(checkpoint)
    settings = NetSettings.from_hparams(checkpoint["hyper_parameters"])
    if settings.softmax == "adaptive":  # its head as the rows of a full softmax
        pretrained = {k: v for k, v in pretrained.items() if not k.startswith("head.")}
        pretrained["head.weight"], pretrained["head.bias"] = _output_rows(checkpoint, settings)
    for key, value in pretrained.items():
        if key in VOCAB_ROWS:
            state[key] = state[key].clone()
            state[key][dst] = value[src].to(state[key].dtype)
        else:
            state[key] = value
    net.load_state_dict(state)  # (tied weights: both keys hold the same rows and fill the one shared matrix)
    return len(pairs)


def _output_rows(checkpoint: dict, settings: NetSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """An adaptive softmax's head as the weight and bias of a full softmax over the same tokens: a token of the
    head keeps its row; a token of tail cluster i gets the cluster's row plus its own row through the
    cluster's projection (the logit log p(cluster) + log p(token | cluster) before the cluster's normalisation,
    which a full softmax cannot hold: an initialisation, not the same distribution)."""
    state = {k.removeprefix("head."): v for k, v in net_state(checkpoint).items()}
    cut = [*settings.adaptive_cutoffs(), settings.vocab_size]
    head_w = state["head.weight"].float()
    head_b = state["head.bias"].float() if "head.bias" in state else torch.zeros(len(head_w))
    weight, bias = [head_w[: cut[0]]], [head_b[: cut[0]]]
    for i in range(len(cut) - 1):
        tail = state[f"tail.{i}.1.weight"].float() @ state[f"tail.{i}.0.weight"].float()  # (cluster, hidden)
        weight.append(head_w[cut[0] + i] + tail)
        bias.append(head_b[cut[0] + i].expand(len(tail)))
    return torch.cat(weight), torch.cat(bias)
