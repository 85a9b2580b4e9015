import json
import logging

import pytest

from lyricgen.data.tokenizer import NEWLINE, SPACE, JiebaTokenizer, tokenize_songs


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
