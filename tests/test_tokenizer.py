import json
import logging

import pytest

from lyricgen.data.tokenizer import (
    NEWLINE,
    SPACE,
    CharTokenizer,
    JiebaTokenizer,
    WordsTokenizer,
    from_settings,
    tokenize_songs,
)
from lyricgen.errors import LyricgenError


def test_words_and_phrase_breaks():
    tok = JiebaTokenizer()
    words = tok.tokenize_line("  想要和你飞到宇宙去 \u3000 融化在一起\t")
    assert words[0] != SPACE and words[-1] != SPACE  # ends stripped
    assert words.count(SPACE) == 1  # one run of ASCII and full-width spaces is one break
    assert "".join(words) == "想要和你飞到宇宙去 融化在一起"
    assert "宇宙" in words  # jieba words, not characters


def test_text_with_line_breaks():
    tokens = JiebaTokenizer().tokenize("星星\n月亮")
    assert tokens == ["星星", NEWLINE, "月亮"]


def test_cache_is_used_on_second_run(tmp_path, monkeypatch):
    songs = [["星星 在天上", "我爱你"]]
    first = tokenize_songs(songs, JiebaTokenizer(), "abc", tmp_path)
    assert len(list(tmp_path.glob("tokens-*.json"))) == 1

    def no_jieba(self, line):
        raise AssertionError("jieba ran although the cache holds this corpus")

    monkeypatch.setattr(JiebaTokenizer, "tokenize_line", no_jieba)
    assert tokenize_songs(songs, JiebaTokenizer(), "abc", tmp_path) == first


def test_cache_is_keyed_by_corpus_and_settings(tmp_path):
    songs = [["星星 在天上"]]
    tokenize_songs(songs, JiebaTokenizer(), "abc", tmp_path)
    tokenize_songs(songs, JiebaTokenizer(), "other-corpus", tmp_path)
    tokenize_songs(songs, JiebaTokenizer(hmm=False), "abc", tmp_path)
    assert len(list(tmp_path.glob("tokens-*.json"))) == 3


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    songs = [["星星 在天上", "我爱你"]]
    good = tokenize_songs(songs, JiebaTokenizer(), "abc", tmp_path)
    (path,) = tmp_path.glob("tokens-*.json")
    text = path.read_text(encoding="utf-8")
    if damage == "truncate":
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    else:
        data = json.loads(text)
        data["songs"][0][0] = ["篡改"]
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert tokenize_songs(songs, JiebaTokenizer(), "abc", tmp_path) == good
    assert "corrupt" in caplog.text
    assert json.loads(path.read_text(encoding="utf-8"))["songs"] == good  # repaired on disk


ROUND_TRIPS = [
    "星星在天上 闪烁\n我爱你",  # Chinese, a phrase break
    "Once upon a time, there was a king.\nROMEO: I'll go--'tis he, \"my lord\" (said she)!",  # English
    "Hello 世界, ok.\nLove 你 3000",  # mixed
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_char_round_trip_keeps_every_character(text):
    tok = CharTokenizer()
    tokens = tok.tokenize(text)
    assert tok.detokenize(tokens) == text and tok.text_length(tokens) == len(text)
    assert all(len(t) == 1 for t in tokens) and " " in tokens  # spaces are tokens


@pytest.mark.parametrize("text", ROUND_TRIPS[1:])
def test_words_round_trip_gives_readable_text(text):
    tok = WordsTokenizer()
    tokens = tok.tokenize(text)
    assert " " not in tokens and "," in tokens  # punctuation is a token, spaces are not
    assert tok.detokenize(tokens) == text
    assert tok.text_length(tokens) == len(text)  # bpc counts the spaces the tokens stand for


def test_words_tokens():
    tokens = WordsTokenizer().tokenize_line("Once upon a time, the well-known king's o' the sea--")
    assert tokens == ["Once", "upon", "a", "time", ",", "the", "well-known", "king's", "o'", "the", "sea", "--"]
    assert WordsTokenizer(lowercase=True).tokenize_line("ROMEO: Hi") == ["romeo", ":", "hi"]


def test_jieba_round_trip():
    tok = JiebaTokenizer()
    assert tok.detokenize(tok.tokenize(ROUND_TRIPS[0])) == ROUND_TRIPS[0]


@pytest.mark.parametrize("tok", [JiebaTokenizer(hmm=False), CharTokenizer(), WordsTokenizer(lowercase=True)])
def test_settings_rebuild_the_tokenizer(tok):
    again = from_settings(tok.settings)
    assert type(again) is type(tok) and again.settings == tok.settings
    assert again.tokenize(ROUND_TRIPS[2]) == tok.tokenize(ROUND_TRIPS[2])


def test_settings_of_old_checkpoints_mean_jieba():
    assert isinstance(from_settings({"hmm": True, "jieba_version": "0.42.1"}), JiebaTokenizer)
    with pytest.raises(LyricgenError, match="tokenizer 'bpe'"):
        from_settings({"name": "bpe"})


def test_cache_key_changes_with_the_tokenizer(tmp_path):
    songs = [["Once upon a time, 星星"]]
    results = [
        tokenize_songs(songs, tok, "abc", tmp_path) for tok in (JiebaTokenizer(), CharTokenizer(), WordsTokenizer())
    ]
    assert len(list(tmp_path.glob("tokens-*.json"))) == 3
    assert results[1][0][0][:4] == ["O", "n", "c", "e"] and results[2][0][0][:2] == ["Once", "upon"]
    assert tokenize_songs(songs, CharTokenizer(), "abc", tmp_path) == results[1]  # read back, not mixed up


def test_resuming_with_another_tokenizer_is_refused():
    from lyricgen.checkpoint import check_resumable

    ckpt = {
        "hyper_parameters": {"cell": "rnn"},
        "lyricgen": {"vocab": {"tokens": ["<unk>", "a"]}, "tokenizer": CharTokenizer().settings},
    }
    check_resumable(ckpt, "last.ckpt", {"cell": "rnn"}, CharTokenizer().settings)  # the same: resumes
    with pytest.raises(LyricgenError, match="tokenizer name char in the checkpoint, jieba here"):
        check_resumable(ckpt, "last.ckpt", {"cell": "rnn"}, JiebaTokenizer().settings)
    old = {**ckpt, "lyricgen": {"vocab": {"tokens": ["<unk>", "a"]}, "tokenizer": {"hmm": True}}}  # before names
    check_resumable(old, "last.ckpt", {"cell": "rnn"}, JiebaTokenizer().settings)
    with pytest.raises(LyricgenError, match="tokenizer hmm True in the checkpoint, False here"):
        check_resumable(old, "last.ckpt", {"cell": "rnn"}, JiebaTokenizer(hmm=False).settings)
