import pytest

from lyricgen.data.vocab import UNK, Vocab

pytestmark = pytest.mark.portable  # also run inside the simulation of macOS and Windows (.ci/run)


def test_min_freq_and_unknown_words():
    vocab = Vocab.build(["爱", "爱", "你", "你", "你", "雨"], min_freq=2)
    assert vocab.itos == [UNK, "你", "爱"]  # most frequent first; 雨 (seen once) is out
    assert vocab.encode(["你", "雨", "没见过"]) == [1, 0, 0]
    assert vocab.decode([2, 1]) == ["爱", "你"]
    assert "雨" not in vocab and len(vocab) == 3


def test_order_is_deterministic():
    a = Vocab.build(["b", "a", "c", "a", "b", "c"], min_freq=1)
    b = Vocab.build(["c", "c", "b", "a", "b", "a"], min_freq=1)
    assert a.itos == b.itos == [UNK, "a", "b", "c"]  # equal counts: code-point order


def test_json_round_trip(tmp_path):
    vocab = Vocab.build(["星星", "\n", " ", "星星", "\n", " "], min_freq=1)
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == vocab
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


def test_a_vocabulary_starts_with_unk():
    with pytest.raises(ValueError):
        Vocab(["a", UNK])


def test_max_vocab_keeps_the_most_frequent_words():
    tokens = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"]
    assert Vocab.build(tokens, min_freq=1, max_vocab=2).itos == [UNK, "a", "b"]
    assert Vocab.build(tokens, min_freq=1, max_vocab=3).itos == [UNK, "a", "b", "c"]  # ties: code-point order
    assert Vocab.build(tokens, min_freq=2, max_vocab=10).itos == [UNK, "a", "b", "c", "d"]  # min_freq still cuts
    assert Vocab.build(tokens, min_freq=1).itos == [UNK, "a", "b", "c", "d", "e"]
