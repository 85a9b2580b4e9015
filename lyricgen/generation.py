"""Decoding: one implementation for `scripts/generate.py`, the TensorBoard callback and Python users.

    from lyricgen.generation import LyricsGenerator
    gen = LyricsGenerator.from_checkpoint("outputs/.../checkpoints/last.ckpt")
    print(gen.generate("星星", lines=4, temperature=0.8, seed=0)[0])

Decoding is incremental: the prompt runs through the network once to warm the hidden state, then
each new token costs one RNN step; `num_samples` samples are decoded together as one batch. Only
torch is imported here (no Lightning, no jieba unless a phrase has to be segmented), so that the
generation command starts fast.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from lyricgen.data.tokenizer import NEWLINE, SPACE, Tokenizer
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import RNNLM


@dataclass
class DecodingOptions:
    """How to pick each next word. `length` caps the new tokens; `lines` stops after N complete lines."""

    strategy: str = "sample"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    length: int | None = 100
    lines: int | None = None
    num_samples: int = 1
    max_length: int = 2000  # a cap for `lines` alone, so that a model that never ends a line stops

    @classmethod
    def from_mapping(cls, values: Mapping) -> "DecodingOptions":
        """The options found among `values` (e.g. a script's config); other keys are ignored."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def check(self) -> "DecodingOptions":
        """Raise LyricgenError, with the fix, for the first value out of range."""
        checks = [
            (self.strategy in ("sample", "greedy"), f"strategy must be 'sample' or 'greedy', got {self.strategy!r}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.top_k >= 0, f"top_k must be >= 0 (0 turns it off), got {self.top_k}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (self.repetition_penalty >= 1, f"repetition_penalty must be >= 1 (1 turns it off), got {self.repetition_penalty}"),
            (self.length is None or self.length >= 0, f"length must be >= 0, got {self.length}"),
            (self.lines is None or self.lines >= 1, f"lines must be >= 1, got {self.lines}"),
            (self.length is not None or self.lines is not None, "give length or lines (or both)"),
            (self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}"),
        ]
        for ok, message in checks:
            if not ok:
                raise LyricgenError(message)
        return self


def _nucleus(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask all but the smallest set of likeliest words whose probability reaches `top_p`."""
    probs = logits.softmax(dim=-1)
    if probs.device.type == "cpu":
        # On the CPU, torch.sort of a few thousand floats costs about as much as the RNN step
        # (~100 us); numpy's argsort takes a quarter of that.
        order = torch.from_numpy(np.argsort(-probs.numpy(), axis=-1))
        sorted_p = probs.gather(-1, order)
    else:
        sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = sorted_p.cumsum(dim=-1) - sorted_p < top_p  # words before it have not reached top_p yet
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, -math.inf)


def _pick(logits: torch.Tensor, opts: DecodingOptions, generator: torch.Generator | None) -> torch.Tensor:
    """Next token ids (batch,) from last-step logits (batch, vocab)."""
    if opts.strategy == "greedy":
        return logits.argmax(dim=-1)
    logits = logits / opts.temperature
    if opts.top_k > 0:
        kth = torch.topk(logits, min(opts.top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if opts.top_p < 1:
        logits = _nucleus(logits, opts.top_p)
    # Inverse-CDF sampling: the same distribution as torch.multinomial, about ten times faster on
    # the CPU for one draw from a vocabulary of thousands (a cumsum and a binary search).
    cdf = logits.softmax(dim=-1).cumsum(dim=-1)
    u = torch.rand(cdf.size(0), 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.size(-1) - 1)


@torch.inference_mode()
def decode(
    net: RNNLM,
    prompt_ids: list[int],
    opts: DecodingOptions,
    *,
    newline_id: int,
    unk_id: int = 0,
    no_penalty_ids: tuple[int, ...] = (),
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """Continue `prompt_ids` with `opts.num_samples` samples; returns the new ids of each (prompt excluded).

    An empty prompt starts at the beginning of a line (the newline token is the context).
    `<unk>` is never produced; `no_penalty_ids` (line breaks, spaces) are exempt from the repetition penalty.
    """
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    batch = opts.num_samples
    context = torch.tensor(prompt_ids or [newline_id], device=device).expand(batch, -1)
    budget = opts.length if opts.length is not None else opts.max_length
    seen = torch.zeros(batch, net.head.out_features, dtype=torch.bool, device=device)
    if opts.repetition_penalty > 1:
        seen[:, prompt_ids] = True
    exempt = torch.tensor(no_penalty_ids, dtype=torch.long, device=device)
    lines_done = torch.zeros(batch, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out = torch.empty(batch, budget, dtype=torch.long, device=device)
    n = 0
    logits, hidden = net(context)
    for n in range(1, budget + 1):
        step = logits[:, -1].float()
        step[:, unk_id] = -math.inf
        if opts.repetition_penalty > 1:
            penalised = seen.clone()
            penalised[:, exempt] = False
            scaled = torch.where(step > 0, step / opts.repetition_penalty, step * opts.repetition_penalty)
            step = torch.where(penalised, scaled, step)
        token = _pick(step, opts, generator)
        out[:, n - 1] = token
        if opts.repetition_penalty > 1:
            seen[torch.arange(batch, device=device), token] = True
        if opts.lines is not None:
            lines_done += (token == newline_id) & ~finished
            finished |= lines_done >= opts.lines
            if bool(finished.all()):
                break
        if n < budget:
            logits, hidden = net(token[:, None], hidden)
    net.train(was_training)
    results = []
    for row in out[:, :n].tolist():
        if opts.lines is not None:  # cut each sample after its own N-th line break
            breaks = [i for i, t in enumerate(row) if t == newline_id]
            if len(breaks) >= opts.lines:
                row = row[: breaks[opts.lines - 1] + 1]
        results.append(row)
    return results


def tokens_to_text(tokens: list[str]) -> str:
    """Join words into text; newline tokens become line breaks, with no trailing one."""
    return "".join(tokens).strip("\n")


def _similar_words(word: str, vocab: Vocab, k: int = 5) -> list[str]:
    """Vocabulary words that share the most characters with `word`, frequent words first."""
    chars = set(word)
    scored = [
        (-len(chars & set(t)), i, t) for i, t in enumerate(vocab.itos) if i and t not in (NEWLINE, SPACE) and chars & set(t)
    ]
    return [t for _, _, t in sorted(scored)[:k]]


def load_checkpoint(path: str | Path) -> dict:
    """Read a lyricgen checkpoint onto the CPU, with errors that say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise LyricgenError(f"checkpoint {path} does not exist; pass ckpt_path=PATH to a .ckpt file from a training run")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling arbitrary bytes can fail in many ways (IndexError, KeyError, ...)
        # torch's weights-only loader wraps the real reason in advice that does not fit a random file
        reason = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines() or [type(e).__name__]
        raise LyricgenError(f"{path} is not a readable PyTorch checkpoint ({reason[0][:100]})") from None
    if not isinstance(ckpt, dict) or "lyricgen" not in ckpt or "hyper_parameters" not in ckpt or "state_dict" not in ckpt:
        raise LyricgenError(f"{path} is not a lyricgen checkpoint (no vocabulary or hyperparameters in it)")
    return ckpt


def find_checkpoint(runs_dir: str | Path = "outputs") -> Path:
    """The best checkpoint (`best-*.ckpt`, else `last.ckpt`) of the newest training run under `runs_dir`."""
    found = [p for p in Path(runs_dir).glob("**/checkpoints/*.ckpt") if p.is_file()]
    if not found:
        raise LyricgenError(
            f"no training run found under {runs_dir}/; train one (python scripts/train.py) or pass ckpt_path=PATH"
        )
    newest_run = max(found, key=lambda p: p.stat().st_mtime).parent
    in_run = sorted(newest_run.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    best = [p for p in in_run if p.name.startswith("best")]
    return (best or [p for p in in_run if p.name == "last.ckpt"] or in_run)[-1]


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise LyricgenError(f"unknown device {device!r}; use auto, cpu or cuda") from None


class LyricsGenerator:
    """A trained network with its vocabulary and tokeniser settings, ready to write lyrics."""

    def __init__(self, net: RNNLM, vocab: Vocab, tokenizer_settings: dict | None = None) -> None:
        self.net = net
        self.vocab = vocab
        self.tokenizer_settings = tokenizer_settings or {}
        self._tokenizer: Tokenizer | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "LyricsGenerator":
        ckpt = load_checkpoint(path)
        hp = ckpt["hyper_parameters"]
        wanted = inspect.signature(RNNLM).parameters
        net = RNNLM(**{k: v for k, v in hp.items() if k in wanted})
        state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
        net.load_state_dict(state)
        extra = ckpt["lyricgen"]
        return cls(net.to(device).eval(), Vocab.from_dict(extra["vocab"]), extra.get("tokenizer"))

    def encode_prompt(self, start_word: str) -> list[int]:
        """Ids of the prompt; a word the model does not know is refused, with similar known words."""
        if not start_word:
            return []
        if start_word in self.vocab:  # a known word needs no segmentation (and no jieba import)
            return [self.vocab.stoi[start_word]]
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(hmm=self.tokenizer_settings.get("hmm", True))
        tokens = self._tokenizer.tokenize(start_word.replace("\\n", "\n"))
        unknown = [t for t in tokens if t not in self.vocab]
        if unknown:
            word = unknown[0]
            similar = _similar_words(word, self.vocab)
            hint = f"; similar words it knows: {', '.join(similar)}" if similar else "; try another start_word"
            raise LyricgenError(f"start_word {word!r} is not in the model's vocabulary{hint}")
        return self.vocab.encode(tokens)

    def generate_tokens(self, start_word: str = "", seed: int | None = None, **options) -> list[list[str]]:
        """Like `generate`, but each sample as its list of words (prompt included)."""
        opts = options.pop("opts", None) or DecodingOptions(**options)
        opts.check()
        prompt = self.encode_prompt(start_word)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=next(self.net.parameters()).device).manual_seed(seed)
        stoi = self.vocab.stoi
        exempt = tuple(stoi[t] for t in (NEWLINE, SPACE) if t in stoi)
        samples = decode(
            self.net, prompt, opts, newline_id=stoi.get(NEWLINE, 0), unk_id=self.vocab.unk_id,
            no_penalty_ids=exempt, generator=generator,
        )
        prompt_tokens = self.vocab.decode(prompt)
        return [prompt_tokens + self.vocab.decode(ids) for ids in samples]

    def generate(self, start_word: str = "", seed: int | None = None, **options) -> list[str]:
        """Write `num_samples` lyrics beginning with `start_word`; each is text with line breaks.

        Options are the fields of `DecodingOptions` (or `opts=DecodingOptions(...)`); `seed` makes
        sampling reproducible.
        """
        return [tokens_to_text(tokens) for tokens in self.generate_tokens(start_word, seed, **options)]
