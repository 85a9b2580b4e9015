import math

import lightning as L
import pytest
import torch

from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.encoding import UNICODE_CHARS
from lyricgen.data.tokenizer import NEWLINE, JiebaTokenizer
from lyricgen.errors import LyricgenError
from lyricgen.model import LyricsLM

WORDS_ONLY = JiebaTokenizer(char_fallback=False)  # lyricgen before 0.3: a word outside the vocabulary is <unk>


def make(path, tmp_path, **kw):
    kw = {"seq_len": 5, "batch_size": 4, "min_freq": 1, "cache_dir": str(tmp_path / "cache"), **kw}
    dm = LyricsDataModule(str(path), **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_protocol_v2_test_is_the_last_lines_val_the_block_before(tmp_path):
    lines = [f"第{i}行 歌词" for i in range(16)] + ["验证 的 秘密", "只在 验证 里", "最后 的 考试", "只在 测试 里"]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    dm = make(path, tmp_path, val_fraction=0.1, test_fraction=0.1, tokenizer=WORDS_ONLY)
    text = {name: "".join(dm.tokens(name)).split(NEWLINE)[:-1] for name in ("train", "val", "test")}
    assert text["test"] == ["最后 的 考试", "只在 测试 里"]  # the last 10% of the lines, in order
    assert text["val"] == ["验证 的 秘密", "只在 验证 里"]  # the 10% before it
    assert text["train"] == lines[:16]  # the rest; together the corpus, once, in order
    # the vocabulary comes from the training split only: held-out words are <unk>
    assert "秘密" not in dm.vocab and "考试" not in dm.vocab and "歌词" in dm.vocab
    assert dm.unk_share["test"] > 0 and dm.unk_share["val"] > 0


def test_train_on_val_trains_on_every_line_before_the_test_block(tmp_path):
    lines = [f"第{i}行 歌词" for i in range(16)] + ["验证 的 秘密", "只在 验证 里", "最后 的 考试", "只在 测试 里"]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    held_out = make(path, tmp_path, val_fraction=0.1, test_fraction=0.1, tokenizer=WORDS_ONLY)
    final = make(path, tmp_path, val_fraction=0.1, test_fraction=0.1, train_on_val=True, tokenizer=WORDS_ONLY)
    text = {name: "".join(final.tokens(name)).split(NEWLINE)[:-1] for name in ("train", "val", "test")}
    assert text["train"] == lines[:18]  # the training lines, then the validation lines
    assert text["test"] == ["最后 的 考试", "只在 测试 里"]  # the test block does not move
    assert len(final.train_ids) == len(held_out.train_ids) + len(held_out.val_ids)
    # the vocabulary and the no_copy n-grams come from both blocks; the test words stay unknown
    assert "秘密" in final.vocab and "秘密" not in held_out.vocab and "考试" not in final.vocab
    assert "val" not in final.unk_share and final.unk_share["test"] > 0  # a share of held-out splits only
    assert len(final.training_ngrams(4)) > len(held_out.training_ngrams(4))


def test_folder_corpus_splits_by_whole_songs(tmp_path):
    for i in range(10):
        (tmp_path / f"song{i}.txt").write_text("\n".join(f"歌{i} 第{j}句" for j in range(6)), encoding="utf-8")
    dm = make(tmp_path, tmp_path, val_fraction=0.2, test_fraction=0.2)
    songs = {
        name: [line.split()[0] for line in "".join(dm.tokens(name)).split(NEWLINE)[:-1]]
        for name in ("train", "val", "test")
    }
    assert set(songs["test"]) == {"歌8", "歌9"}  # whole songs from the end
    assert set(songs["val"]) == {"歌6", "歌7"}  # whole songs before them
    assert set(songs["train"]) == {f"歌{i}" for i in range(6)}
    assert len(songs["train"]) + len(songs["val"]) + len(songs["test"]) == 60  # no line lost or shared


def test_test_max_tokens_keeps_the_first_whole_lines_of_a_big_test_block(tmp_path, caplog):
    lines = [f"第{i}行 歌词" for i in range(30)] + [f"考{i} 试" for i in range(10)]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    whole = make(path, tmp_path, val_fraction=0.25, test_fraction=0.25)
    assert "".join(whole.tokens("test")).split(NEWLINE)[:-1] == lines[30:]  # no bound: the whole block
    per_line = len(whole.test_ids) // 10  # each test line "考i 试\n" is the same number of tokens
    with caplog.at_level("INFO", logger="lyricgen.data.datamodule"):
        cut = make(path, tmp_path, val_fraction=0.25, test_fraction=0.25, test_max_tokens=3 * per_line + 1)
    assert "".join(cut.tokens("test")).split(NEWLINE)[:-1] == lines[30:33]  # its first whole lines that fit
    assert len(cut.test_ids) == 3 * per_line and torch.equal(cut.test_ids, whole.test_ids[: 3 * per_line])
    assert cut.lines["test"] == (30, 33) and cut.chars["test"].chars_per_token == whole.chars["test"].chars_per_token
    assert "first 3 of 10 lines" in caplog.text and "data.test_max_tokens" in caplog.text
    assert torch.equal(cut.val_ids, whole.val_ids) and torch.equal(cut.train_ids, whole.train_ids)
    one = make(path, tmp_path, val_fraction=0.25, test_fraction=0.25, test_max_tokens=per_line - 1, seq_len=3)
    assert "".join(one.tokens("test")).split(NEWLINE)[:-1] == lines[30:31]  # never less than one line
    with pytest.raises(LyricgenError, match=r"data.test_max_tokens=5 leaves .* less than one chunk"):
        make(path, tmp_path, val_fraction=0.25, test_fraction=0.25, test_max_tokens=5)  # seq_len 5
    (scores,) = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(
        LyricsLM(vocab_size=len(cut.vocab), emb_dim=8, hidden_size=8), datamodule=cut, verbose=False
    )
    assert math.isfinite(scores["test/ppl"])  # the cut block is what the test pass reads


def test_test_max_tokens_cuts_a_folder_after_whole_songs(tmp_path):
    for i in range(10):
        (tmp_path / f"song{i}.txt").write_text("\n".join(f"歌{i} 第{j}句" for j in range(6)), encoding="utf-8")
    whole = make(tmp_path, tmp_path, val_fraction=0.2, test_fraction=0.4)
    song = len(whole.test_ids) // 4  # the test block is songs 6 to 9, each as many tokens
    cut = make(tmp_path, tmp_path, val_fraction=0.2, test_fraction=0.4, test_max_tokens=2 * song + song // 2)
    firsts = [line.split()[0] for line in "".join(cut.tokens("test")).split(NEWLINE)[:-1]]
    assert firsts == ["歌6"] * 6 + ["歌7"] * 6  # two whole songs, not half of the third
    assert [song[0].split()[0] for song in cut.songs("test", first_line="")] == ["歌6", "歌7"]


def test_chars_per_token_counts_spaces_and_line_breaks(tmp_path):
    lines = [f"第{i}行 歌词" for i in range(18)] + ["歌词 第行", "我 爱 你"]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    dm = make(path, tmp_path, val_fraction=0.05, test_fraction=0.05, seq_len=3)
    assert dm.tokens("test") == ["我", " ", "爱", " ", "你", "\n"]
    assert dm.tokenizer.text_length(dm.tokens("test")) == 6  # each space and the line break count one character
    # the first token is never a target: 5 predicted tokens stand for 5 characters (" 爱 你\n")
    assert dm.chars["test"].chars_per_token == pytest.approx(5 / 5)


def test_bpc_is_the_summed_nll_in_bits_over_the_characters(tmp_path):
    """A uniform model over V tokens costs log2(V) bits per predicted token; each <unk> it predicts costs the bits
    to spell its character too (an add-one unigram of the training characters over all of Unicode)."""
    lines = [f"第{i}行 歌词" for i in range(18)] + ["歌词 第行", "我 爱 你"]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    dm = make(path, tmp_path, val_fraction=0.05, test_fraction=0.05, seq_len=3)
    model = LyricsLM(vocab_size=len(dm.vocab), emb_dim=8, hidden_size=8)
    torch.nn.init.zeros_(model.net.head.weight)
    torch.nn.init.zeros_(model.net.head.bias)  # logits all 0: every word has probability 1/V
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    (scores,) = trainer.test(model, datamodule=dm, verbose=False)
    v = len(dm.vocab)
    # test text "我 爱 你\n": targets " ", "爱", " ", "你", "\n" = 5 tokens, 5 characters; 爱 and 你 are <unk>
    # (characters the training split never has), each spelt out by Witten-Bell's escape, then one of the rest of
    # Unicode: -log2(alphabet / (characters + alphabet)) + log2(Unicode - alphabet)
    training = "\n".join(lines[:18]) + "\n"  # their characters, spaces and line breaks
    n, a = len(training), len(set(training))
    spell = math.log2((n + a) / a) + math.log2(UNICODE_CHARS - a)
    assert dm.unk_share["test"] == pytest.approx(2 / 5)
    assert scores["test/bpc"] == pytest.approx((5 * math.log2(v) + 2 * spell) / 5, rel=1e-5)
    assert scores["test/ppl"] == pytest.approx(v, rel=1e-4)  # per token: no spelling in it


def test_batches_have_the_configured_shape(tmp_path, tiny_corpus):
    dm = make(tiny_corpus, tmp_path)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 5)
    assert next(iter(dm.val_dataloader()))[0].shape[1] == 5  # val chunks as long as training ones by default
    longer = make(tiny_corpus, tmp_path, eval_seq_len=40)
    for loader, ids in ((longer.val_dataloader(), longer.val_ids), (longer.test_dataloader(), longer.test_ids)):
        x, y = next(iter(loader))
        assert x.shape[1] == min(40, len(ids) - 1) > 5 and torch.equal(x[0, 1:], y[0, :-1])
    # every held-out token is still a target exactly once
    assert sum(int((y != -100).sum()) for _, y in longer.val_dataloader()) == len(longer.val_ids) - 1


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"seq_len": 0}, "seq_len"),
        ({"batch_size": 0}, "batch_size"),
        ({"min_freq": 0}, "min_freq"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": 0}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ data.test_fraction"),
    ],
)
def test_out_of_range_settings_are_refused(tmp_path, tiny_corpus, kw, message):
    with pytest.raises(LyricgenError, match=message):
        LyricsDataModule(str(tiny_corpus), **kw)


def test_too_short_corpus_says_how_many_tokens(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("星星\n月亮\n", encoding="utf-8")
    with pytest.raises(LyricgenError, match=r"too short: 4 tokens .* needs at least data.seq_len \+ 1 = 6"):
        make(path, tmp_path)


def test_max_vocab_keeps_the_most_frequent_training_words(tmp_path):
    from collections import Counter

    path = tmp_path / "c.txt"
    path.write_text("\n".join(f"词{i % 23} 字{i % 7} 歌{i % 3}" for i in range(200)), encoding="utf-8")
    full, capped = make(path, tmp_path, tokenizer=WORDS_ONLY), make(path, tmp_path, max_vocab=12, tokenizer=WORDS_ONLY)
    assert len(capped.vocab) == 12 + 1 and len(full.vocab) > 13
    counts = Counter(capped.tokens("train"))
    assert min(counts[t] for t in capped.vocab.itos[1:]) >= max(
        counts[t] for t in full.vocab.itos if t not in capped.vocab
    )
    assert capped.unk_share["val"] > full.unk_share["val"]  # the words left out become <unk>
    with pytest.raises(LyricgenError, match="data.max_vocab=3 leaves a vocabulary of 3 words"):
        make(path, tmp_path, max_vocab=3, tokenizer=WORDS_ONLY)
