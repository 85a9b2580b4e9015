import pytest
import torch

from lyricgen.errors import LyricgenError
from lyricgen.model import LyricsLM
from lyricgen.rnnlm import RNNLM


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_shapes_and_init_hidden(cell):
    net = RNNLM(vocab_size=50, cell=cell, emb_dim=8, hidden_size=16, num_layers=2)
    hidden = net.init_hidden(3)
    states = hidden if cell == "lstm" else (hidden,)
    assert (cell == "lstm") == isinstance(hidden, tuple)
    for h in states:
        assert h.shape == (2, 3, 16) and not h.any()
    tokens = torch.randint(0, 50, (3, 7))
    logits, new_hidden = net(tokens, hidden)
    assert logits.shape == (3, 7, 50)
    # Feeding the sequence in two pieces, carrying the state, gives the same logits as in one piece.
    net.eval()
    full, _ = net(tokens)
    a, h = net(tokens[:, :4])
    b, _ = net(tokens[:, 4:], h)
    torch.testing.assert_close(torch.cat([a, b], 1), full)


def test_tied_weights_share_one_tensor():
    net = RNNLM(vocab_size=50, emb_dim=16, hidden_size=16, tie_weights=True)
    assert net.head.weight is net.embedding.weight
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in RNNLM(vocab_size=50, emb_dim=16, hidden_size=16).parameters()
    )
    with pytest.raises(LyricgenError, match="emb_dim == model.hidden_size"):
        RNNLM(vocab_size=50, emb_dim=8, hidden_size=16, tie_weights=True)


def test_module_rebuilds_from_its_hyperparameters():
    module = LyricsLM(vocab_size=40, cell="gru", emb_dim=8, hidden_size=12, lr=0.01)
    assert module.hparams.vocab_size == 40 and module.hparams.cell == "gru"
    assert "vocab" not in module.hparams  # the vocabulary travels beside the hparams, not in them
    assert module.init_hidden(2).shape == (1, 2, 12)


def test_bad_options_are_user_errors():
    with pytest.raises(LyricgenError, match="model.cell"):
        LyricsLM(vocab_size=10, cell="transformer")
    with pytest.raises(LyricgenError, match="model.optimizer"):
        LyricsLM(vocab_size=10, optimizer="lion")


def test_stateful_training_carries_the_hidden_state_across_batches():
    module = LyricsLM(vocab_size=20, emb_dim=8, hidden_size=12, stateful=True)
    x = torch.randint(0, 20, (3, 5))
    module.on_train_epoch_start()
    module.training_step((x, x), 0)
    first = module._carried.clone()
    assert first.shape == (1, 3, 12) and not first.requires_grad  # carried, cut from the graph
    module.training_step((x, x), 1)
    _, expected = module.net(x, first)  # the second batch started from the first one's final state
    torch.testing.assert_close(module._carried, expected.detach())
    module.on_train_epoch_start()
    assert module._carried is None  # each epoch starts from zero
