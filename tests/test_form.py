"""Form decoding on a model trained in the test: every constraint met exactly, every refusal, no copying."""

import itertools

import pytest
import torch

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.tokenizer import NEWLINE, JiebaTokenizer
from lyricgen.data.vocab import Vocab
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator
from lyricgen.prosody import count_chars, rhyme_class
from lyricgen.rnnlm import RNNLM, NetSettings
from tests.conftest import (
    TINY_LINES,
    assert_user_error,
    best_checkpoint,
    run_script,
    tiny_overrides,
    train_in_process,
    write_tiny_corpus,
)

SEEDS = range(3)


@pytest.fixture(scope="module")
def gen(trained_run):
    return LyricsGenerator.from_checkpoint(best_checkpoint(trained_run))


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def last_word_class(gen: LyricsGenerator, line: str, rule: str = "shisan") -> str | None:
    """The rhyme class of a generated line, read back independently: jieba, then the last word."""
    return rhyme_class(JiebaTokenizer().tokenize_line(line)[-1], rule)


def test_rhyme_scheme_and_exact_line_lengths(gen):
    for seed in SEEDS:
        for text in gen.generate("", seed=seed, rhyme="AABB", line_chars=5, lines=8, num_samples=4, temperature=1.5):
            lines = lines_of(text)
            assert len(lines) == 8 and all(count_chars(line) == 5 for line in lines), text
            classes = [last_word_class(gen, line) for line in lines]
            assert None not in classes
            assert classes[0] == classes[1] == classes[4] == classes[5]  # A lines: one class all through
            assert classes[2] == classes[3] == classes[6] == classes[7]  # B lines
            assert classes[0] != classes[2]  # another letter, another class


def test_line_chars_list_is_cycled_and_x_lines_are_free(gen):
    text = gen.generate("", seed=0, rhyme="XAXA", line_chars=[3, 6], lines=6, temperature=1.5)[0]
    lines = lines_of(text)
    assert [count_chars(line) for line in lines] == [3, 6, 3, 6, 3, 6]
    assert len({last_word_class(gen, line) for line in lines[1::2]}) == 1


def test_rhyme_with_sets_the_a_class(gen):
    # 家 (jiā) is 发花; the A lines must end in 发花 words (here only 家 itself)
    for text in gen.generate("", seed=1, rhyme="AXAX", rhyme_with="家", line_chars=4, lines=4, num_samples=3):
        lines = lines_of(text)
        assert last_word_class(gen, lines[0]) == last_word_class(gen, lines[2]) == "发花"


def test_acrostic_keywords_no_copy_and_rhyme_together(gen):
    tok = JiebaTokenizer()
    train_runs = {pair for line in TINY_LINES for pair in itertools.pairwise(tok.tokenize_line(line))}
    for seed in SEEDS:
        for text in gen.generate(
            "",
            seed=seed,
            acrostic="星我月风",
            rhyme="AABB",
            line_chars=6,
            keywords=["安静"],
            no_copy=2,
            num_samples=3,
            temperature=1.2,
        ):
            lines = lines_of(text)
            assert len(lines) == 4  # lines default to the acrostic's length
            assert [line[0] for line in lines] == list("星我月风")
            assert all(count_chars(line) == 6 for line in lines)
            assert "安静" in text
            classes = [last_word_class(gen, line) for line in lines]
            assert classes[0] == classes[1] and classes[2] == classes[3]
            # no run of 2 words of a training line: checked against the corpus, not against the index
            for line in lines:
                words = [w for w in tok.tokenize_line(line) if w.strip()]
                assert not set(itertools.pairwise(words)) & train_runs, line


def test_unconstrained_model_copies_and_no_copy_stops_it(gen):
    # the tiny model knows its four lines by heart: free greedy decoding copies them
    assert gen.generate("", strategy="greedy", lines=1)[0].replace(" ", "") in TINY_LINES
    text = gen.generate("", strategy="greedy", no_copy=3, lines=2)[0]
    assert not any(line.replace(" ", "") in TINY_LINES for line in lines_of(text))


def test_start_word_begins_the_first_line_and_counts(gen):
    text = gen.generate("星星", seed=0, line_chars=5, rhyme="AA", lines=2)[0]
    lines = lines_of(text)
    assert lines[0].startswith("星星") and [count_chars(line) for line in lines] == [5, 5]


@pytest.mark.parametrize(
    "options,message",
    [
        ({"acrostic": "龙虎"}, "acrostic character '龙' of line 1: no word the model knows begins with it"),
        ({"keywords": ["星空"]}, "keyword '星空' is not in the model's vocabulary; similar words it knows: 星星"),
        ({"rhyme": "AA", "rhyme_with": "光"}, "rhyme_with '光' is not in the model's vocabulary"),
        ({"rhyme": "aabb"}, "rhyme='aabb' is not a scheme; rhyme takes letters A-Z"),
        ({"rhyme": "A1"}, "rhyme='A1' is not a scheme; rhyme takes letters A-Z"),
        (
            {"line_chars": 0},
            "line_chars=0 is out of range; line_chars takes an integer or a list of integers in [1, 200]",
        ),
        ({"line_chars": [5, 0]}, "line_chars=[5,0] is out of range"),
        ({"no_copy": 1}, "no_copy=1 is out of range; no_copy takes 0 (off) or a run length n >= 2"),
        (
            {"rhyme_rule": "tight", "rhyme": "AA"},
            "rhyme_rule='tight' is not one of the choices; rhyme_rule takes one of shisan",
        ),
        ({"rhyme_with": "家"}, "rhyme_with sets the class of the A lines; give a scheme with A in it"),
        ({"keywords": ["我爱你"], "line_chars": 2}, "keyword '我爱你' (3 characters) fits in no line"),
        ({"acrostic": "星我", "lines": 1}, "acrostic '星我' has 2 characters but lines=1"),
        ({"no_copy": 9}, "no_copy must be between 2 and 8 for this checkpoint"),
    ],
)
def test_impossible_requests_are_refused_before_decoding(gen, options, message):
    with pytest.raises(LyricgenError) as e:
        gen.generate("", seed=0, **options)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def words_gen(tmp_path_factory):
    """A model of the tiny corpus's words alone (no char fallback: no one-character words but 我, 爱, 你...)."""
    base = tmp_path_factory.mktemp("words")
    corpus = write_tiny_corpus(base / "tiny.txt")
    overrides = tiny_overrides(corpus, base, "trainer.max_epochs=1", "data.tokenizer.char_fallback=false", "cache=none")
    result = train_in_process(overrides, base / "run")
    return LyricsGenerator.from_checkpoint(result["best_ckpt"])


@pytest.mark.parametrize(
    "options,message",
    [
        ({"acrostic": "星", "line_chars": 1}, "line 1 (1 characters, beginning with '星') cannot be written"),
        (
            {"rhyme": "AA", "rhyme_with": "我爱你", "line_chars": 1},
            "line 1 (1 characters, rhyme letter A) cannot end in the 一七 class of rhyme_with='我爱你'",
        ),
    ],
)
def test_lines_no_word_can_make_are_refused_before_decoding(words_gen, options, message):
    with pytest.raises(LyricgenError) as e:
        words_gen.generate("", seed=0, **options)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_start_word_against_the_form(gen):
    with pytest.raises(LyricgenError, match="does not begin with the acrostic's first character '月'"):
        gen.generate("星星", acrostic="月风")
    with pytest.raises(LyricgenError, match="has 4 characters, more than line 1 \\(3 characters"):
        gen.generate("星星天上", line_chars=3)


def tiny_generator(ngrams: NgramIndex | None) -> LyricsGenerator:
    torch.manual_seed(0)
    vocab = Vocab(["<unk>", NEWLINE, "我", "你", "他"])
    return LyricsGenerator(RNNLM(NetSettings(len(vocab), emb_dim=8, hidden_size=8)), vocab, ngrams=ngrams)


def test_a_constraint_that_fails_midway_ends_with_a_message_not_a_hang():
    # every pair of words occurs in "training": after the first word nothing may follow
    words = [2, 3, 4]
    ngrams = NgramIndex.build([list(p) for p in itertools.product(words, repeat=2)], max_n=4)
    gen = tiny_generator(ngrams)
    with pytest.raises(LyricgenError, match="could not write line 1 \\(3 characters\\) and no_copy=2: every candidate"):
        gen.generate("", line_chars=3, no_copy=2, seed=0)
    assert count_chars(gen.generate("", line_chars=1, no_copy=2, seed=0)[0]) == 1  # one word is no run


def test_no_copy_needs_the_index_and_says_how_to_get_it():
    with pytest.raises(LyricgenError, match="no n-gram index .* retrain the model"):
        tiny_generator(None).generate("", no_copy=3)


def test_script_writes_form_and_refuses_in_one_line(trained_run):
    ckpt = best_checkpoint(trained_run)
    ok = run_script(
        "generate",
        f"ckpt_path={ckpt}",
        "acrostic=星我",
        "rhyme=AA",
        "line_chars=6",
        "seed=0",
        "keywords=[安静]",
        "no_copy=3",
        "num_samples=2",
    )
    assert ok.returncode == 0, ok.stderr
    for sample in ok.stdout.rstrip("\n").split("\n\n"):
        lines = sample.split("\n")
        assert [line[0] for line in lines] == ["星", "我"] and [count_chars(x) for x in lines] == [6, 6]
    bad = run_script("generate", f"ckpt_path={ckpt}", "acrostic=龙")
    assert_user_error(bad, "error: acrostic character '龙'")
    assert bad.stdout == ""


def test_latin_words_do_not_fill_a_chinese_line():
    from lyricgen.decoding.tables import WordTables

    chinese = Vocab.from_counts({"星星": 5, "月亮": 5, "天空": 5, "Na": 9, "OK": 9}, min_freq=1)
    ok = WordTables(chinese, "shisan").word_ok
    assert not ok[chinese.stoi["Na"]] and not ok[chinese.stoi["OK"]]
    assert ok[chinese.stoi["星星"]]
    english = Vocab.from_counts({"star": 5, "moon": 5, "sky": 5, "月": 1}, min_freq=1)
    assert WordTables(english, "shisan").word_ok[english.stoi["star"]]  # a words model keeps its words
