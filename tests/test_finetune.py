"""Pre-training and fine-tuning: `init_from` starts a run from another run's weights (nanoGPT's init_from)."""

from __future__ import annotations

import re

import pytest
import torch

from lyricgen.checkpoint import copy_pretrained, load_checkpoint, read_extras
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import RNNLM, NetSettings
from tests.conftest import assert_user_error, best_checkpoint, run_script, tiny_overrides, train_in_process


def test_copy_pretrained_copies_the_rows_of_shared_tokens_and_leaves_new_ones_fresh(trained_run):
    ckpt = load_checkpoint(best_checkpoint(trained_run))
    old_vocab = read_extras(ckpt)[0]
    words = [w for w in old_vocab.itos[1:] if w != "<unk>"]
    new_vocab = Vocab(["<unk>", "新词", *words[::2], "另一个"])  # half the old words, two new ones, another order
    settings = NetSettings.from_hparams({**ckpt["hyper_parameters"], "vocab_size": len(new_vocab)})
    torch.manual_seed(0)
    net = RNNLM(settings)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    shared = copy_pretrained(net, ckpt, new_vocab)
    assert shared == len(new_vocab) - 2
    old = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()}
    for word in words[::2]:
        i, j = new_vocab.stoi[word], old_vocab.stoi[word]
        for key in ("embedding.weight", "head.weight", "head.bias"):
            assert torch.equal(net.state_dict()[key][i], old[key][j]), (word, key)
    for word in ("新词", "另一个"):  # new tokens keep the initialisation of a fresh model
        assert torch.equal(net.embedding.weight[new_vocab.stoi[word]], fresh["embedding.weight"][new_vocab.stoi[word]])
    assert torch.equal(net.rnn.weight_hh_l0, old["rnn.weight_hh_l0"])  # the cell as trained


def _fine_tune(tmp_path, trained_run, *extra) -> tuple[dict, dict]:
    """A run on another corpus from the tiny model, at a learning rate of almost nothing (after the run, the
    shared rows are still the pre-trained ones): (its last checkpoint, the pre-trained one)."""
    corpus = tmp_path / "other.txt"
    corpus.write_text("\n".join(["星星在天上闪烁", "我们唱一首新歌", "夜晚的风很安静"] * 40) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    overrides = tiny_overrides(corpus, tmp_path, f"init_from={trained_run}", "trainer.max_epochs=1", "model.lr=1e-9")
    overrides = [o for o in overrides if not o.startswith(("model.emb_dim", "model.hidden_size"))]
    train_in_process([*overrides, "model.hidden_size=999", *extra], run_dir)  # not typed: taken as is
    tuned = load_checkpoint(next((run_dir / "checkpoints").glob("last.ckpt")))
    base = load_checkpoint(best_checkpoint(trained_run))
    assert tuned["hyper_parameters"]["hidden_size"] == base["hyper_parameters"]["hidden_size"] == 64
    return tuned, base


def test_fine_tuning_keeps_the_pretrained_vocabulary_and_adds_new_characters_as_new_rows(tmp_path, trained_run):
    tuned, base = _fine_tune(tmp_path, trained_run, "tokenizer=char")  # the checkpoint's tokeniser wins (jieba)
    new_vocab, old_vocab = read_extras(tuned)[0], read_extras(base)[0]
    assert read_extras(tuned)[1]["name"] == "jieba"
    assert new_vocab.itos[: len(old_vocab)] == old_vocab.itos  # every pre-trained row where it was
    added = new_vocab.itos[len(old_vocab) :]
    assert "一首" not in new_vocab and {"唱", "一", "首", "新", "歌", "很"} <= set(added)  # spelt out; new rows
    assert all(len(t) == 1 for t in added)
    emb = "net.embedding.weight"
    rows = len(old_vocab)
    assert torch.allclose(tuned["state_dict"][emb][:rows], base["state_dict"][emb], atol=1e-5)


def test_init_vocab_map_gives_the_run_its_own_vocabulary_with_the_shared_rows_copied(tmp_path, trained_run):
    tuned, base = _fine_tune(tmp_path, trained_run, "init_vocab=map")
    new_vocab, old_vocab = read_extras(tuned)[0], read_extras(base)[0]
    assert new_vocab != old_vocab and new_vocab.itos[: len(old_vocab)] != old_vocab.itos
    for word in ("星星", "闪烁", "夜晚"):
        a = tuned["state_dict"]["net.embedding.weight"][new_vocab.stoi[word]]
        b = base["state_dict"]["net.embedding.weight"][old_vocab.stoi[word]]
        assert torch.allclose(a, b, atol=1e-5), word


def test_init_from_refuses_what_does_not_fit(tmp_path, trained_run, tiny_corpus):
    ckpt = str(best_checkpoint(trained_run))
    base = tiny_overrides(tiny_corpus, tmp_path, "trainer.max_epochs=1")
    base = [o for o in base if not o.startswith(("model.emb_dim", "model.hidden_size"))]
    typed = {  # what the command line typed against the checkpoint's shape: read from Hydra's run, a real script
        "model.hidden_size=128": "init_from=.* does not fit this run: model.hidden_size=128 here, 64 in the checkpoint",
        "model=gru": "model.cell=gru here, rnn in the checkpoint",
        "init_vocab=map tokenizer=char": "tokenizer=char here, jieba in the checkpoint; .*: use tokenizer=jieba",
    }
    for override, message in typed.items():
        out = run_script("train", *base, f"init_from={ckpt}", *override.split(), f"hydra.run.dir={tmp_path / 'x'}")
        assert re.search(message, assert_user_error(out)), out.stderr
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    files = {  # refused whatever was typed: in-process
        f"init_from={tmp_path / 'nope.ckpt'}": "init_from=.*nope.ckpt does not exist",
        f"init_from={foreign}": "is not a lyricgen checkpoint",
        f"init_from={ckpt} ckpt_path={ckpt}": "not both",
    }
    for number, (overrides, message) in enumerate(files.items()):
        with pytest.raises(LyricgenError, match=message):
            train_in_process([*base, *overrides.split()], tmp_path / str(number))


def test_an_adaptive_softmax_becomes_the_rows_of_a_full_one():
    """A pre-trained adaptive head as a full softmax: the head's words keep their logits, and a tail word's
    logit is its cluster's plus its own within the cluster (the two terms of its log-probability)."""
    torch.manual_seed(0)
    settings = NetSettings(vocab_size=40, cell="lstm", emb_dim=8, hidden_size=12, softmax="adaptive", cutoffs=[10, 25])
    settings = NetSettings(**{**settings.as_hparams(), "head_bias": True})
    adaptive = RNNLM(settings)
    vocab = Vocab(["<unk>", *[f"w{i}" for i in range(1, 40)]])
    ckpt = {
        "hyper_parameters": settings.as_hparams(),
        "state_dict": {f"net.{k}": v for k, v in adaptive.state_dict().items()},
        "lyricgen": {"vocab": vocab.to_dict(), "tokenizer": {"name": "char"}},
    }
    full = RNNLM(NetSettings(**{**settings.as_hparams(), "softmax": "full", "cutoffs": None}))
    assert copy_pretrained(full, ckpt, vocab) == 40
    h = torch.randn(5, 12)
    z, head = full.head(h), adaptive.head.head(h)
    torch.testing.assert_close(z[:, :10], head[:, :10])
    for i, (lo, hi) in enumerate([(10, 25), (25, 40)]):
        torch.testing.assert_close(z[:, lo:hi] - head[:, 10 + i : 11 + i], adaptive.head.tail[i](h))
    assert torch.equal(full.rnn.weight_hh_l0, adaptive.rnn.weight_hh_l0)
