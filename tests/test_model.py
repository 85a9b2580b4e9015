from dataclasses import asdict

import lightning as L
import pytest
import torch

from lyricgen.checkpoint import build_net, load_checkpoint
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from lyricgen.model import LyricsLM
from lyricgen.rnnlm import RNNLM, NetSettings, locked_dropout, word_dropout


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_shapes_and_init_hidden(cell):
    net = RNNLM(NetSettings(vocab_size=50, cell=cell, emb_dim=8, hidden_size=16, num_layers=2))
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
    net = RNNLM(NetSettings(vocab_size=50, emb_dim=16, hidden_size=16, tie_weights=True))
    assert net.head.weight is net.embedding.weight
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in RNNLM(NetSettings(vocab_size=50, emb_dim=16, hidden_size=16)).parameters()
    )
    with pytest.raises(LyricgenError, match="emb_dim == model.hidden_size"):
        RNNLM(NetSettings(vocab_size=50, emb_dim=8, hidden_size=16, tie_weights=True))


def saved_checkpoint(module: LyricsLM, path) -> dict:
    """Save `module` as training does (a Trainer's checkpoint, after one step) and read the file back."""
    data = torch.utils.data.DataLoader([(torch.randint(0, 40, (5,)), torch.randint(0, 40, (5,)))] * 2, batch_size=2)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=data)
    trainer.save_checkpoint(path)
    return load_checkpoint(path)


def test_module_rebuilds_from_its_hyperparameters(tmp_path):
    settings = NetSettings(40, "gru", emb_dim=12, hidden_size=12, num_layers=2, tie_weights=True, locked_dropout=True)
    module = LyricsLM(vocab=Vocab(["<unk>", *map(str, range(39))]), **asdict(settings), lr=0.01, scheduler="cosine")
    ckpt = saved_checkpoint(module, tmp_path / "m.ckpt")
    hp = ckpt["hyper_parameters"]
    assert hp == {**asdict(settings), **asdict(module.optim)}  # every setting, as a plain scalar
    scalar = (int, float, str, bool, type(None))
    # plain values: scalars, or lists of numbers (model.coverage, model.cutoffs), which weights_only loads
    assert all(
        isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(x, scalar) for x in v)) for v in hp.values()
    )
    tokens = torch.randint(0, 40, (2, 7))
    module.eval()
    expected, _ = module(tokens)
    for rebuilt in (build_net(ckpt), LyricsLM.load_from_checkpoint(tmp_path / "m.ckpt").net):  # plain and Lightning
        assert rebuilt.settings == settings
        assert isinstance(rebuilt.rnn, torch.nn.ModuleList) and isinstance(rebuilt.rnn[1], torch.nn.GRU)
        assert rebuilt.head.weight is rebuilt.embedding.weight  # tied again
        torch.testing.assert_close(rebuilt.eval()(tokens)[0], expected)  # and the same function


def test_a_checkpoint_written_before_the_awd_options_still_loads(tmp_path):
    module = LyricsLM(vocab=Vocab(["<unk>", *map(str, range(39))]), vocab_size=40, emb_dim=8, hidden_size=8)
    ckpt = saved_checkpoint(module, tmp_path / "m.ckpt")
    for key in ("locked_dropout", "word_dropout", "weight_drop", "ar", "tar"):
        del ckpt["hyper_parameters"][key]  # as issue #11's checkpoints were written
    torch.save(ckpt, tmp_path / "old.ckpt")
    assert build_net(ckpt).settings == NetSettings(40, emb_dim=8, hidden_size=8)
    assert LyricsLM.load_from_checkpoint(tmp_path / "old.ckpt").optim.ar == 0.0


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


def test_locked_dropout_uses_one_mask_per_sequence():
    x = torch.ones(4, 30, 16)
    out = locked_dropout(x, 0.5, training=True)
    assert (out == out[:, :1]).all()  # the same mask at every time step
    assert (out == 0).any() and set(out.unique().tolist()) <= {0.0, 2.0}  # dropped or rescaled by 1/(1-p)
    assert not (out[0] == out[1]).all()  # but another mask for another sequence
    assert locked_dropout(x, 0.5, training=False) is x


def test_locked_dropout_in_the_network_between_layers():
    torch.manual_seed(0)
    net = RNNLM(
        NetSettings(
            vocab_size=30, cell="lstm", emb_dim=8, hidden_size=8, num_layers=2, dropout=0.5, locked_dropout=True
        )
    )
    seen = []
    net.rnn[1].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    net.train()
    net(torch.randint(0, 30, (3, 6)))
    dropped = seen[0] == 0
    assert dropped.any() and (dropped == dropped[:, :1]).all()  # the second layer's input: one mask per sequence
    net.eval()
    full, _ = net(torch.randint(0, 30, (3, 6)))
    assert full.shape == (3, 6, 30)


def test_word_dropout_drops_whole_word_types():
    w = torch.ones(100, 8)
    out = word_dropout(w, 0.3, training=True)
    rows_zero, rows_kept = (out == 0).all(1), (out == 1 / 0.7).all(1)
    assert rows_zero.any() and (rows_zero | rows_kept).all()  # a word is dropped everywhere or nowhere
    assert word_dropout(w, 0.3, training=False) is w


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_weight_drop_zeroes_recurrent_weights_in_training_only(cell):
    torch.manual_seed(0)
    net = RNNLM(NetSettings(vocab_size=30, cell=cell, emb_dim=8, hidden_size=16, weight_drop=0.5))
    saved = net.rnn.weight_hh_l0.detach().clone()
    seen = []
    net.rnn.register_forward_pre_hook(lambda m, args: seen.append(m.weight_hh_l0.detach().clone()))
    tokens = torch.randint(0, 30, (2, 5))
    net.train()
    logits, _ = net(tokens)
    zero_share = (seen[-1] == 0).float().mean().item()
    assert 0.35 < zero_share < 0.65  # DropConnect: about half the hidden-to-hidden weights are 0
    kept = seen[-1] != 0
    torch.testing.assert_close(seen[-1][kept], saved[kept] * 2)  # the rest rescaled by 1/(1-p)
    assert (net.rnn.weight_ih_l0 != 0).all()  # input weights untouched
    logits.sum().backward()
    assert net.rnn.weight_hh_l0.grad is not None  # the real parameter still learns
    torch.testing.assert_close(net.rnn.weight_hh_l0.detach(), saved)  # and was never overwritten
    net.eval()
    net(tokens)
    torch.testing.assert_close(seen[-1], saved)  # eval: the full weights


def test_ar_and_tar_add_the_expected_term():
    module = LyricsLM(vocab_size=20, emb_dim=8, hidden_size=8, dropout=0.0, emb_dropout=0.0, ar=2.0, tar=0.5)
    raw = torch.tensor([[[1.0], [3.0], [3.0]]])
    dropped = torch.tensor([[[2.0], [0.0], [2.0]]])
    # AR: 2 * mean(4, 0, 4) = 16/3; TAR: 0.5 * mean((3-1)^2, (3-3)^2) = 1
    assert module.activation_penalty(raw, dropped).item() == pytest.approx(16 / 3 + 1)
    # and the training loss is the cross-entropy plus that penalty of the network's own outputs
    plain = LyricsLM(vocab_size=20, emb_dim=8, hidden_size=8, dropout=0.0, emb_dropout=0.0)
    plain.load_state_dict(module.state_dict())
    x = torch.randint(0, 20, (2, 6))
    _, _, (out, out_dropped) = module.net(x, return_outputs=True)
    expected = 2.0 * out_dropped.pow(2).mean() + 0.5 * (out[:, 1:] - out[:, :-1]).pow(2).mean()
    torch.testing.assert_close(module.training_step((x, x), 0) - plain.training_step((x, x), 0), expected)


def test_frequency_cutoffs_end_the_head_and_each_cluster_where_their_share_of_the_tokens_ends():
    from lyricgen.rnnlm import frequency_cutoffs

    counts = torch.tensor([0] + [10_000 // r for r in range(1, 400)])  # <unk> unseen, then a Zipf vocabulary
    ids = torch.repeat_interleave(torch.arange(len(counts)), counts)
    cut = frequency_cutoffs(ids[torch.randperm(len(ids))], len(counts), [0.8, 0.95])
    held = counts.cumsum(0) / counts.sum()
    assert len(cut) == 2 and cut[0] < cut[1] < len(counts) - 1
    for c, share in zip(cut, (0.8, 0.95)):
        assert held[c - 1] >= share > held[c - 2]  # the fewest words that hold the share
    assert frequency_cutoffs(ids, len(counts), [0.5]) < [cut[0]]
    assert frequency_cutoffs(torch.zeros(5, dtype=torch.long), 4, [0.8, 0.95]) == [1]  # one word holds all: one cut
    with pytest.raises(LyricgenError, match="training tokens"):
        frequency_cutoffs(torch.tensor([], dtype=torch.long), 10)


def test_training_an_adaptive_softmax_saves_the_cutoffs_it_drew_from_the_training_tokens(tmp_path):
    from lyricgen.rnnlm import frequency_cutoffs
    from tests.conftest import compose_train, tiny_overrides, train_in_process, write_tiny_corpus

    corpus = write_tiny_corpus(tmp_path / "tiny.txt")
    overrides = tiny_overrides(corpus, tmp_path, "model.softmax=adaptive", "model.coverage=[0.5,0.9]")
    result = train_in_process([*overrides, "trainer.max_epochs=3"], tmp_path / "run")
    hp = load_checkpoint(result["best_ckpt"])["hyper_parameters"]
    from hydra.utils import instantiate

    dm = instantiate(compose_train(overrides, tmp_path / "probe").data)
    dm.prepare_data()
    dm.setup("fit")
    expected = frequency_cutoffs(dm.train_ids, len(dm.vocab), [0.5, 0.9])
    assert hp["cutoffs"] == expected and hp["coverage"] == [0.5, 0.9]
    assert expected != NetSettings(vocab_size=len(dm.vocab), softmax="adaptive").adaptive_cutoffs()  # not 1/8, 1/2
    assert build_net(load_checkpoint(result["best_ckpt"])).settings.adaptive_cutoffs() == expected
    # resumed, the run keeps the checkpoint's clusters
    resumed = train_in_process(
        [*overrides, "trainer.max_epochs=4", f"ckpt_path={result['best_ckpt']}"], tmp_path / "resumed"
    )
    assert load_checkpoint(resumed["best_ckpt"])["hyper_parameters"]["cutoffs"] == expected
