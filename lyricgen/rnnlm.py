"""The plain PyTorch language model: Embedding -> RNN/GRU/LSTM -> Linear. Usable without Lightning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.func import functional_call

from lyricgen.errors import LyricgenError
from lyricgen.schema import check, option

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Variational dropout on (batch, time, features): one mask per sequence, the same at every step."""
    if not training or p == 0:
        return x
    mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - p) / (1 - p)
    return x * mask


def word_dropout(weight: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Embedding dropout: whole rows (word types) of the embedding matrix dropped, the rest rescaled."""
    if not training or p == 0:
        return weight
    mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)
    return weight * mask


@dataclass(frozen=True)
class NetSettings:
    """The network's constructor arguments, the one list of them: `RNNLM` takes one of these, `LyricsLM`
    saves its fields as plain scalar hyperparameters, and a checkpoint's hyperparameters give it back
    (`from_hparams`). Each field's range is checked by `check` (see `lyricgen.schema`); the config
    group `model` sets them as `model.<field>`."""

    vocab_size: int = option(ge=2, note="from the data")
    cell: str = option("rnn", choices=tuple(CELLS))
    emb_dim: int = option(128, ge=1)
    hidden_size: int = option(256, ge=1)
    num_layers: int = option(1, ge=1)
    dropout: float = option(0.0, ge=0, lt=1)
    emb_dropout: float = option(0.0, ge=0, lt=1)
    tie_weights: bool = option(False, note="needs emb_dim == hidden_size")
    nonlinearity: str = option("tanh", choices=("tanh", "relu"))
    locked_dropout: bool = option(False)
    word_dropout: float = option(0.0, ge=0, lt=1)
    weight_drop: float = option(0.0, ge=0, lt=1)
    softmax: str = option("full", choices=("full", "adaptive"))
    cutoffs: list[int] | None = option(None, ge=1, note="adaptive softmax: the word ranks where clusters start")
    # How training derives `cutoffs` when none are given (`frequency_cutoffs`); the cutoffs it finds are saved
    # with the model, so this only matters before a model exists.
    coverage: list[float] = option(
        gt=0,
        lt=1,
        default_factory=lambda: [0.8, 0.95],
        note="adaptive softmax without cutoffs: the shares of training tokens the head, then each cluster, end at",
    )
    # The adaptive softmax's projections and head bias: torch's defaults here, as every checkpoint made
    # before these options had them; conf/model/rnn.yaml sets the values tuned on val (2.0, true).
    div_value: float = option(4.0, gt=0, note="adaptive softmax: each cluster's projection is this much narrower")
    head_bias: bool = option(False, note="adaptive softmax: a bias in its head (the full softmax always has one)")

    @classmethod
    def from_hparams(cls, hparams: Mapping) -> NetSettings:
        """The settings among a module's or a checkpoint's hyperparameters (others are ignored; a field
        missing from an older checkpoint takes its default)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in hparams.items() if k in names})

    def as_hparams(self) -> dict:
        return asdict(self)

    def check(self) -> NetSettings:
        """Refuse, with the fix, a value of the wrong type or out of range, and weights that cannot be tied."""
        check(asdict(self), NetSettings, "model.")
        if self.tie_weights and self.emb_dim != self.hidden_size:
            raise LyricgenError(
                "model.tie_weights needs model.emb_dim == model.hidden_size, "
                f"got {self.emb_dim} and {self.hidden_size}; set both to one size or model.tie_weights=false"
            )
        if self.softmax == "adaptive":
            if self.tie_weights:
                raise LyricgenError("model.softmax=adaptive has no output matrix to tie: set model.tie_weights=false")
            cut = self.adaptive_cutoffs()
            if not cut or cut != sorted(set(cut)) or cut[-1] >= self.vocab_size - 1:
                raise LyricgenError(
                    f"model.cutoffs={cut} must rise strictly and stay below the vocabulary size - 1 "
                    f"({self.vocab_size - 1}); e.g. model.cutoffs=[{max(1, self.vocab_size // 8)}]"
                )
        return self

    def adaptive_cutoffs(self) -> list[int]:
        """The cluster boundaries of the adaptive softmax: `cutoffs`. Training fills them in from the
        vocabulary's frequencies (`frequency_cutoffs`); settings without them (a Python user's, or a checkpoint
        made before that) keep the old rule: the most frequent 1/8 of the vocabulary in the head and the next
        3/8 in the first tail cluster (Grave et al. 2017)."""
        if self.cutoffs is not None:
            return [int(c) for c in self.cutoffs]
        return sorted({c for c in (self.vocab_size // 8, self.vocab_size // 2) if 1 <= c < self.vocab_size - 1})


def frequency_cutoffs(ids: torch.Tensor, vocab_size: int, coverage: Sequence[float] = (0.8, 0.95)) -> list[int]:
    """Adaptive-softmax cutoffs from the training tokens `ids` (vocabulary ids in frequency order, as `Vocab`
    makes them): the head is the fewest ids that hold `coverage[0]` of the tokens, each next cluster ends
    where the ids hold the next share. Cutoffs that would coincide or leave a cluster of one word are
    dropped; at least one is kept."""
    counts = torch.bincount(torch.as_tensor(ids).flatten(), minlength=vocab_size).double()
    if counts.sum() <= 0:
        raise LyricgenError("the adaptive softmax's cutoffs are drawn from the training tokens, and there are none")
    held = counts.cumsum(0) / counts.sum()
    n = vocab_size
    cuts = sorted({min(int(torch.searchsorted(held, q)) + 1, n - 2) for q in sorted(coverage)})
    cuts = [c for c in cuts if c >= 1]
    return cuts or [max(1, n // 8)]


class RNNLM(nn.Module):
    """Word-level language model; one class for every cell, as in PyTorch's word_language_model.

    Dropout is applied to the embeddings (`emb_dropout`), between stacked layers and before the
    output layer (`dropout`). `tie_weights` shares the embedding matrix with the output layer
    (Press & Wolf 2017; Inan et al. 2017), which needs `emb_dim == hidden_size`.

    AWD-LSTM's regularisers (Merity et al. 2017), each off by default:
    `locked_dropout` makes those dropouts variational (one mask per sequence, Gal & Ghahramani 2016);
    `word_dropout` drops whole word types from the embedding matrix; `weight_drop` is DropConnect on
    the hidden-to-hidden weights (`weight_hh_l*`), a new mask per forward pass in training, the full
    weights in eval. The fused nn.RNN/GRU/LSTM kernel is kept: the dropped weights are handed to it
    with `torch.func.functional_call`, so the module's own parameters are never overwritten.
    """

    def __init__(self, settings: NetSettings) -> None:
        super().__init__()
        s = self.settings = settings.check()
        self.cell, self.num_layers, self.hidden_size = s.cell, s.num_layers, s.hidden_size
        self.dropout, self.emb_dropout = s.dropout, s.emb_dropout
        self.locked, self.word_dropout, self.weight_drop = s.locked_dropout, s.word_dropout, s.weight_drop
        self.embedding = nn.Embedding(s.vocab_size, s.emb_dim)
        extra = {"nonlinearity": s.nonlinearity} if s.cell == "rnn" else {}
        if s.locked_dropout and s.num_layers > 1:
            # One module per layer, so that a locked mask can sit between layers.
            sizes = [s.emb_dim] + [s.hidden_size] * s.num_layers
            self.rnn: nn.Module = nn.ModuleList(
                CELLS[s.cell](sizes[i], s.hidden_size, 1, batch_first=True, **extra) for i in range(s.num_layers)
            )
        else:  # one fused module (the state_dict layout of every earlier checkpoint)
            self.rnn = CELLS[s.cell](
                s.emb_dim,
                s.hidden_size,
                s.num_layers,
                batch_first=True,
                dropout=s.dropout if s.num_layers > 1 else 0.0,
                **extra,
            )
        self.vocab_size = s.vocab_size
        self.adaptive = s.softmax == "adaptive"
        if self.adaptive:
            # Grave et al. 2017: frequent words in a full head, rarer ones in clusters of smaller projections;
            # training computes only the clusters its targets fall in.
            self.head: nn.Module = nn.AdaptiveLogSoftmaxWithLoss(
                s.hidden_size, s.vocab_size, s.adaptive_cutoffs(), div_value=s.div_value, head_bias=s.head_bias
            )
        else:
            self.head = nn.Linear(s.hidden_size, s.vocab_size)
        # Small uniform embeddings and a zero output bias (word_language_model's init_weights); with tied
        # weights the shared matrix starts small, so the first logits are near uniform and training is stable.
        # (The head is made first: the order of the random draws every earlier run was made with.)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if not self.adaptive:
            nn.init.zeros_(self.head.bias)
            if s.tie_weights:
                self.head.weight = self.embedding.weight
            else:
                nn.init.uniform_(self.head.weight, -0.1, 0.1)

    def init_hidden(self, batch_size: int, device: torch.device | str | None = None) -> Hidden:
        """The zero state: (layers, batch, hidden), a pair of them for an LSTM; in the weights' dtype (bf16-true)."""
        h = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device, dtype=self.embedding.weight.dtype)
        return (h, h.clone()) if self.cell == "lstm" else h

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if self.locked:
            return locked_dropout(x, p, self.training)
        return nn.functional.dropout(x, p, self.training)

    def _run(self, rnn: nn.Module, x: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        if not (self.training and self.weight_drop > 0):
            return rnn(x, hidden)
        params = {
            name: nn.functional.dropout(p, self.weight_drop, True) if name.startswith("weight_hh") else p
            for name, p in rnn.named_parameters()
        }
        return functional_call(rnn, params, (x, hidden))

    def forward(
        self, tokens: torch.Tensor, hidden: Hidden | None = None, return_outputs: bool = False
    ) -> tuple[torch.Tensor, Hidden] | tuple[torch.Tensor, Hidden, tuple[torch.Tensor, torch.Tensor]]:
        """tokens (batch, time) -> logits (batch, time, vocab) and the new hidden state. With the adaptive
        softmax the "logits" are its exact log-probabilities (log_softmax leaves them as they are, so
        every reader of logits works unchanged).

        With `return_outputs`, also the last layer's outputs before and after the output dropout
        (for AR / TAR).
        """
        out, dropped, hidden = self.features(tokens, hidden)
        if self.adaptive:
            logits = self.adaptive_head(dropped.reshape(-1, dropped.size(-1)), method="log_prob")
            logits = logits.view(*dropped.shape[:2], -1)
        else:
            logits = self.head(dropped)
        return (logits, hidden, (out, dropped)) if return_outputs else (logits, hidden)

    def adaptive_head(self, features: torch.Tensor, targets: torch.Tensor | None = None, method: str = "forward"):
        """The adaptive softmax's `forward` (with targets), `log_prob` or `predict`, in its weights' dtype with
        autocast off: under bf16 autocast it would compute and sum its log-probabilities in bf16, which keeps
        ~3 digits (two models then logged one val/ppl)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            features = features.to(self.head.head.weight.dtype)
            args = (features,) if targets is None else (features, targets)
            return getattr(self.head, method)(*args)

    def features(self, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, torch.Tensor, Hidden]:
        """The last layer's outputs before and after the output dropout, and the new hidden state."""
        if hidden is None:
            hidden = self.init_hidden(tokens.size(0), tokens.device)
        weight = word_dropout(self.embedding.weight, self.word_dropout, self.training)
        x = self._drop(nn.functional.embedding(tokens, weight), self.emb_dropout)
        if not isinstance(self.rnn, nn.ModuleList):
            out, hidden = self._run(self.rnn, x, hidden)
        else:
            is_lstm = isinstance(hidden, tuple)
            states = []
            for i, rnn in enumerate(self.rnn):
                h = (hidden[0][i : i + 1], hidden[1][i : i + 1]) if is_lstm else hidden[i : i + 1]
                x, h = self._run(rnn, x, h)
                states.append(h)
                if i < self.num_layers - 1:
                    x = self._drop(x, self.dropout)
            out = x
            if is_lstm:
                hidden = (torch.cat([s[0] for s in states]), torch.cat([s[1] for s in states]))
            else:
                hidden = torch.cat(states)
        return out, self._drop(out, self.dropout), hidden


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph between batches (truncated backpropagation through time)."""
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


def select_hidden(hidden: Hidden, index: torch.Tensor) -> Hidden:
    """Rows `index` of a hidden state (layers, batch, size), or of each part of an LSTM's pair."""
    if isinstance(hidden, tuple):
        return tuple(h.index_select(1, index) for h in hidden)
    return hidden.index_select(1, index)


def assign_hidden(target: Hidden, index: torch.Tensor, source: Hidden, source_rows: torch.Tensor) -> None:
    """target[:, index] = source[:, source_rows], for a hidden state or an LSTM's pair."""
    if isinstance(target, tuple):
        for t, s in zip(target, source):
            t[:, index] = s[:, source_rows]
    else:
        target[:, index] = source[:, source_rows]
