import pytest

from lyricgen.data.tokenizer import (
    NEWLINE,
    SPACE,
    CharTokenizer,
    JiebaTokenizer,
    WordsTokenizer,
    from_settings,
)
from lyricgen.errors import LyricgenError

pytestmark = pytest.mark.portable  # also run inside the simulation of macOS and Windows (.ci/run)


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
    check_resumable(old, "last.ckpt", {"cell": "rnn"}, JiebaTokenizer(char_fallback=False).settings)
    with pytest.raises(LyricgenError, match="tokenizer hmm True in the checkpoint, False here"):
        check_resumable(old, "last.ckpt", {"cell": "rnn"}, JiebaTokenizer(hmm=False, char_fallback=False).settings)
    with pytest.raises(LyricgenError, match="tokenizer char_fallback False in the checkpoint, True here"):
        check_resumable(old, "last.ckpt", {"cell": "rnn"}, JiebaTokenizer().settings)  # before char fallback
