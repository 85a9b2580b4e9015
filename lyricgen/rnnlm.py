"""The plain PyTorch language model: Embedding -> RNN/GRU/LSTM -> Linear. Usable without Lightning."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from lyricgen.errors import LyricgenError

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

    def __init__(
        self,
        vocab_size: int,
        cell: str = "rnn",
        emb_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        tie_weights: bool = False,
        nonlinearity: str = "tanh",
        locked_dropout: bool = False,
        word_dropout: float = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise LyricgenError(f"model.cell must be one of {sorted(CELLS)}, got {cell!r}")
        if tie_weights and emb_dim != hidden_size:
            raise LyricgenError(
                f"model.tie_weights needs model.emb_dim == model.hidden_size, got {emb_dim} and {hidden_size}"
            )
        for name, p in (
            ("dropout", dropout),
            ("emb_dropout", emb_dropout),
            ("word_dropout", word_dropout),
            ("weight_drop", weight_drop),
        ):
            if not 0 <= p < 1:
                raise LyricgenError(f"model.{name} must be in [0, 1), got {p}")
        if min(vocab_size, emb_dim, hidden_size, num_layers) < 1:
            raise LyricgenError("model sizes (emb_dim, hidden_size, num_layers) must be at least 1")
        self.cell, self.num_layers, self.hidden_size = cell, num_layers, hidden_size
        self.dropout, self.emb_dropout = dropout, emb_dropout
        self.locked, self.word_dropout, self.weight_drop = locked_dropout, word_dropout, weight_drop
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        if locked_dropout and num_layers > 1:
            # One module per layer, so that a locked mask can sit between layers.
            sizes = [emb_dim] + [hidden_size] * num_layers
            self.rnn: nn.Module = nn.ModuleList(
                CELLS[cell](sizes[i], hidden_size, 1, batch_first=True, **extra) for i in range(num_layers)
            )
        else:  # one fused module (the state_dict layout of every earlier checkpoint)
            self.rnn = CELLS[cell](
                emb_dim, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0, **extra
            )
        self.head = nn.Linear(hidden_size, vocab_size)
        # Small uniform embeddings and a zero output bias (word_language_model's init_weights); with tied
        # weights the shared matrix starts small, so the first logits are near uniform and training is stable.
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)
        if tie_weights:
            self.head.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.head.weight, -0.1, 0.1)

    def init_hidden(self, batch_size: int, device: torch.device | str | None = None) -> Hidden:
        """The zero state: (layers, batch, hidden), a pair of them for an LSTM."""
        h = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device)
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
        """tokens (batch, time) -> logits (batch, time, vocab) and the new hidden state.

        With `return_outputs`, also the last layer's outputs before and after the output dropout
        (for AR / TAR).
        """
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
        dropped = self._drop(out, self.dropout)
        logits = self.head(dropped)
        return (logits, hidden, (out, dropped)) if return_outputs else (logits, hidden)


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph between batches (truncated backpropagation through time)."""
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
