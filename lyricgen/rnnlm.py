"""The plain PyTorch language model: Embedding -> RNN/GRU/LSTM -> Linear. Usable without Lightning."""

from __future__ import annotations

import torch
from torch import nn

from lyricgen.errors import LyricgenError

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RNNLM(nn.Module):
    """Word-level language model; one class for every cell, as in PyTorch's word_language_model.

    Dropout is applied to the embeddings (`emb_dropout`), between stacked layers and before the
    output layer (`dropout`). `tie_weights` shares the embedding matrix with the output layer
    (Press & Wolf 2017; Inan et al. 2017), which needs `emb_dim == hidden_size`.
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
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise LyricgenError(f"model.cell must be one of {sorted(CELLS)}, got {cell!r}")
        if tie_weights and emb_dim != hidden_size:
            raise LyricgenError(
                f"model.tie_weights needs model.emb_dim == model.hidden_size, got {emb_dim} and {hidden_size}"
            )
        for name, p in (("dropout", dropout), ("emb_dropout", emb_dropout)):
            if not 0 <= p < 1:
                raise LyricgenError(f"model.{name} must be in [0, 1), got {p}")
        if min(vocab_size, emb_dim, hidden_size, num_layers) < 1:
            raise LyricgenError("model sizes (emb_dim, hidden_size, num_layers) must be at least 1")
        self.cell, self.num_layers, self.hidden_size = cell, num_layers, hidden_size
        self.embedding = nn.Embedding(vocab_size, emb_dim)
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](
            emb_dim, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0, **extra
        )
        self.emb_drop = nn.Dropout(emb_dropout)
        self.out_drop = nn.Dropout(dropout)
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

    def forward(self, tokens: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """tokens (batch, time) -> logits (batch, time, vocab) and the new hidden state."""
        if hidden is None:
            hidden = self.init_hidden(tokens.size(0), tokens.device)
        out, hidden = self.rnn(self.emb_drop(self.embedding(tokens)), hidden)
        return self.head(self.out_drop(out)), hidden


def detach_hidden(hidden: Hidden) -> Hidden:
    """Cut the graph between batches (truncated backpropagation through time)."""
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
