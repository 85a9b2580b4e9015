"""The web page's functions (lyricgen.app: models, inputs, page) on a model trained in the test: what they
write, what they refuse, and hostile requests. The page served by scripts/app.py: tests/test_serving.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from lyricgen.app.inputs import MAX_CRITIC_CHARS, MAX_FIELD_CHARS, PARAMETERS, parse_keywords, parse_line_chars
from lyricgen.app.models import Models, model_info
from lyricgen.app.page import LyricsPage
from lyricgen.app.serving import check_serving
from lyricgen.checkpoint import find_checkpoint, training_runs
from lyricgen.data.tokenizer import JiebaTokenizer
from lyricgen.errors import LyricgenError
from tests.conftest import BIG, CRITIC_TEXT, TINY_LINES, assert_aabb, last_word_class, make_runs, path_like_names


def measures_of(table: list[list]) -> dict:
    return dict((name, value) for name, value in table)


# --- the page's functions -------------------------------------------------------------------------


def test_write_annotates_each_line_with_characters_and_rhyme_class(page):
    lyrics, rows, table = page.generate("星星", lines=3, strategy="greedy")
    assert [line.replace(" ", "") for line in lyrics.split("\n")] == TINY_LINES[:3]  # the learnt lines
    assert [r[:2] for r in rows] == [[1, 1], [1, 2], [1, 3]]
    assert [r[3] for r in rows] == [7, 6, 8]
    assert [r[4] for r in rows] == ["梭波", "言前", "发花"]  # 烁, 远, 家
    found = measures_of(table)
    assert found["repeated-line rate"] == 0 and found["distinct-1"] == 1.0
    assert "novelty" not in found and isinstance(found["seed"], int)


def test_write_with_form_meets_it_and_measures_it(page):
    lyrics, rows, table = page.generate(
        "", lines=8, num_samples=2, rhyme="AABB", line_chars="5", seed=0, temperature=1.5
    )
    samples = lyrics.split("\n\n")
    assert len(samples) == 2 and len(rows) == 16
    for text in samples:
        assert_aabb(text, 5)
    assert [r[4] for r in rows[:8]] == [last_word_class(line) for line in samples[0].split("\n")]
    found = measures_of(table)
    assert found["scheme accuracy"] == 1.0 and found["line-length accuracy"] == 1.0 and found["seed"] == 0


def test_empty_seed_draws_one_that_reproduces_the_lyrics(page):
    lyrics, _, table = page.generate("", lines=4, num_samples=2, temperature=3.0, seed="")
    seed = measures_of(table)["seed"]
    assert page.generate("", lines=4, num_samples=2, temperature=3.0, seed=str(seed))[0] == lyrics


def test_limits_are_exactly_the_limits(page):
    start = "星星在天上闪烁" * 6 + "我爱你到永远" + "星星"  # 50 characters, every word known
    assert len(start) == 50
    assert page.generate(start, lines=1, strategy="greedy")[0].replace(" ", "").startswith(start)
    lyrics, _, _ = page.generate("", lines=64, length="", num_samples=16, strategy="greedy")  # no cap in words
    assert [len(s.split("\n")) for s in lyrics.split("\n\n")] == [64] * 16
    rows, _ = page.critic(("星星在天上闪烁\n" * 2000)[:MAX_CRITIC_CHARS])
    assert len(rows) == 1250


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda p: p.generate("星" * 51), "start word length (characters): 51, over this page's limit of 50"),
        (lambda p: p.generate("", lines=65), "lines: 65, over this page's limit of 64"),
        (lambda p: p.generate("", num_samples=17), "samples: 17, over this page's limit of 16"),
        (
            lambda p: p.critic("我" * (MAX_CRITIC_CHARS + 1)),
            "critic text length (characters): 10001, over this page's limit of 10000",
        ),
        (lambda p: p.generate("", line_chars="31"), "characters per line: 31, over this page's limit of 30"),
        (lambda p: p.generate("", best_of=9, rhyme="AABB"), "best_of: 9, over this page's limit of 8"),
        (lambda p: p.generate("", keywords=",".join(["星星"] * 17)), "keywords: 17, over this page's limit of 16"),
    ],
)
def test_requests_over_the_limits_are_refused_with_a_message(page, call, fragment):
    with pytest.raises(LyricgenError, match="^" + fragment.replace("(", r"\(").replace(")", r"\)") + "$"):
        call(page)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"start_word": "太阳"}, "start_word '太阳' is not in the model's vocabulary"),
        ({"acrostic": "星我月风", "lines": 2}, "acrostic '星我月风' has 4 characters but lines=2"),
        ({"line_chars": "7 or so"}, "characters per line must be a number or numbers separated by commas"),
        ({"rhyme": "A1B2"}, "rhyme=.A1B2. is not a scheme; rhyme takes letters A-Z"),
        ({"rhyme_with": "家"}, "rhyme_with sets the class of the A lines"),
        ({"seed": "one"}, "seed must be a whole number, got 'one'"),
        ({"keywords": "太阳"}, "keyword '太阳' is not in the model's vocabulary"),
    ],
)
def test_mistakes_are_one_line_messages(page, kwargs, fragment):
    with pytest.raises(LyricgenError, match=fragment) as e:
        page.generate(**kwargs)
    assert "\n" not in str(e.value)


def test_critic_gives_the_table_scheme_and_perplexity(page):
    rows, summary = page.critic(CRITIC_TEXT, copy_n=4)
    assert [r[1] for r in rows] == ["我看着月光", "你说你受伤", "鸟儿飞", "星星在天上闪烁", "我回家"]
    assert [r[2] for r in rows] == [5, 5, 3, 7, 3]
    assert [r[3] for r in rows] == ["江阳", "江阳", "灰堆", "梭波", "发花"]
    assert [r[5].startswith("yes") for r in rows] == [False, False, False, True, False]
    assert f"training line 1: {TINY_LINES[0]}" in rows[3][5]  # where: the run's corpus is at hand
    assert rows[3][4] * 3 < min(r[4] for i, r in enumerate(rows) if i != 3)  # the learnt line is far likelier
    assert summary.splitlines()[0] == "scheme: AAXXX" and summary.splitlines()[-1].startswith("perplexity: ")
    for empty in ("", " \n\n "):
        with pytest.raises(LyricgenError, match="the critic box is empty"):
            page.critic(empty)


def test_runs_are_listed_and_picked_by_name_only(trained_run, tmp_path):
    runs_dir = tmp_path / "outputs"
    older, newer = runs_dir / "2026-01-01" / "a", runs_dir / "2026-01-02" / "b"
    shutil.copytree(trained_run, older)
    shutil.copytree(trained_run, newer)
    for ckpt in (older / "checkpoints").glob("*.ckpt"):
        os.utime(ckpt, (time.time() - 3600, time.time() - 3600))
    models = Models(runs_dir)
    assert list(models.runs()) == ["2026-01-02/b", "2026-01-01/a"]  # newest first
    assert training_runs(runs_dir) == [newer, older] and find_checkpoint(runs_dir).parent.parent == newer
    choices = models.run_choices()
    assert [name for _, name in choices] == ["2026-01-02/b", "2026-01-01/a"]
    assert re.fullmatch(r"2026-01-02/b · rnn · val bpc \d+\.\d\d\d", choices[0][0]), choices
    results = json.loads((older / "results.json").read_text())  # made a final run's: no validation, test only
    del results["best_val_ppl"], results["best_val_bpc"]
    (older / "results.json").write_text(json.dumps({**results, "final_ckpt": "final-epoch19.ckpt"}))
    label = models.run_choices()[1][0]
    assert label == f"2026-01-01/a · rnn · final run, test bpc {results['test_bpc']:.3f}"
    page = LyricsPage(models)
    info = page.switch("2026-01-01/a")
    assert models.current.run == "2026-01-01/a" and models.current.ckpt_path.name.startswith("best-")
    assert "`2026-01-01/a`" in info and "| cell | rnn |" in info and "32 / 64 / 1" in info
    for outside in ("../a", str(older), "2026-01-01", ""):
        with pytest.raises(LyricgenError, match="pick one from the list"):
            page.switch(outside)
    assert models.current.run == "2026-01-01/a"  # a refused switch leaves the model loaded


def test_model_info_reads_the_runs_results(page):
    info = model_info(page.models.current)
    assert re.search(r"\| best val bpc \(every character\) \| \d+\.\d\d\d \|", info)
    assert re.search(r"\| test bpc \(every character\) \| \d+\.\d\d\d \|", info)
    assert re.search(r"\| best val/ppl \(per token\) \| \d+\.\d\d \|", info)
    assert "| vocabulary |" in info and "| n-gram index (no_copy, copies) | yes |" in info


def test_text_fields_and_serving_settings_are_parsed_or_refused():
    assert parse_line_chars(" 5, 7，5 7 ") == [5, 7, 5, 7] and parse_line_chars("") is None
    assert parse_keywords("回忆, 雨、星星  月亮") == ["回忆", "雨", "星星", "月亮"]
    assert check_serving("127.0.0.1", "7860", 2, 32) == ("127.0.0.1", 7860, 2, 32)
    for bad in [
        ("", 7860, 2, 32),
        ("127.0.0.1", "abc", 2, 32),
        ("127.0.0.1", 70000, 2, 32),
        ("127.0.0.1", 7860, 0, 32),
    ]:
        with pytest.raises(LyricgenError):
            check_serving(*bad)


def test_lines_of_a_words_model_read_with_its_spaces():
    from lyricgen.app.page import _line_rows
    from lyricgen.data.tokenizer import NEWLINE, WordsTokenizer

    tokens = WordsTokenizer().tokenize("Once upon a time, there was\nROMEO: I'll go.")
    rows = _line_rows(tokens, "shisan", WordsTokenizer().join)
    assert [text for text, _, _ in rows] == ["Once upon a time, there was", "ROMEO: I'll go."]
    assert [text for text, _, _ in _line_rows(["星星", "的", NEWLINE, "雨"], "shisan", JiebaTokenizer().join)] == [
        "星星的",
        "雨",
    ]


# --- hostile requests: path-like run names, huge fields, checkpoints built to run code -------------


def test_run_names_that_are_paths_and_checkpoints_built_to_run_code_are_refused(trained_run, tmp_path):
    runs_dir, marker, fragments = make_runs(trained_run, tmp_path)
    models = Models(runs_dir)
    page = LyricsPage(models)
    assert set(fragments) < set(models.runs())  # listed: the page finds out only when one is picked
    page.switch("2026-01-01/00-00-00")
    for name, fragment in [*path_like_names(tmp_path / "outside" / "best-x.ckpt"), *fragments.items()]:
        with pytest.raises(LyricgenError) as e:
            page.switch(name)
        assert fragment in str(e.value) and "\n" not in str(e.value) and len(str(e.value)) < 400, (name, e.value)
    assert not marker.exists()  # the code in the checkpoints never ran
    assert models.current.run == "2026-01-01/00-00-00"  # a refused switch leaves the model loaded
    assert page.generate("星星", lines=1, strategy="greedy")[0].replace(" ", "") == TINY_LINES[0]


def test_a_run_config_that_names_other_code_is_never_called(trained_run, tmp_path):
    run, marker = tmp_path / "outputs" / "r", tmp_path / "config-code-ran"
    shutil.copytree(trained_run, run)
    (run / ".hydra" / "config.yaml").write_text(f"data:\n  _target_: builtins.open\n  _args_: ['{marker}', 'w']\n")
    try:
        loaded = Models(tmp_path / "outputs").load_run("r")  # the checkpoint is good: loaded, without training text
        assert loaded.training_lines is None
    finally:
        assert not marker.exists()


OVER_FIELD = f"over this page's limit of {MAX_FIELD_CHARS}"


OWN_LIMITS = {
    "start_word": "start word length (characters): 100000, over this page's limit of 50",
    "cipai": "tune name length (characters): 100000, over this page's limit of 50",
    "acrostic": "acrostic length (characters): 100000, over this page's limit of 64",
}


@pytest.mark.parametrize("field", PARAMETERS[1:])  # every input of the Write tab but the start word
def test_a_field_of_100000_characters_is_refused_in_a_short_message(page, field):
    limit = OWN_LIMITS.get(field, f"{field} length (characters): 100000, {OVER_FIELD}")
    with pytest.raises(LyricgenError) as e:
        page.generate(**{"start_word": "", field: BIG})
    assert str(e.value) == limit  # not the 100,000 characters repeated back


def test_critic_fields_of_100000_characters_are_refused_in_a_short_message(page):
    for kwargs, message in [
        ({"text": BIG}, f"critic text length (characters): 100000, over this page's limit of {MAX_CRITIC_CHARS}"),
        ({"text": "我看着月光", "rhyme_rule": BIG}, f"rhyme_rule length (characters): 100000, {OVER_FIELD}"),
        ({"text": "我看着月光", "copy_n": "9" * 100_000}, f"copy_n length (characters): 100000, {OVER_FIELD}"),
    ]:
        with pytest.raises(LyricgenError) as e:
            page.critic(**kwargs)
        assert str(e.value) == message


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seed": 2**70}, "seed must be a whole number between -2**63 and 2**63 - 1, got 1180591620717411303424"),
        ({"seed": "9" * 400}, "seed must be a whole number between -2**63 and 2**63 - 1, got '" + "9" * 400 + "'"),
        ({"lines": "1e308"}, "lines must be a whole number between -2**63 and 2**63 - 1, got '1e308'"),
        ({"lines": 10**400}, "lines must be a whole number between -2**63 and 2**63 - 1, got 1" + "0" * 400),
        ({"temperature": 10**400}, "temperature must be a number, got 1" + "0" * 400),
        ({"lines": "nan"}, "lines must be a whole number, got 'nan'"),
        ({"lines": [1, 2]}, "lines must be a whole number, got [1, 2]"),
        ({"top_p": 5}, "top_p=5.0 is out of range; top_p takes a number in (0, 1]; e.g. top_p=1.0"),
        ({"num_samples": -1}, "num_samples=-1 is out of range; num_samples takes an integer >= 1; e.g. num_samples=1"),
    ],
)
def test_numbers_out_of_range_are_refused_with_a_message(page, kwargs, message):
    with pytest.raises(LyricgenError) as e:
        page.generate("", **kwargs)
    assert str(e.value) == message


def test_a_long_seed_is_kept_to_the_last_digit(page):
    seed = 2**62 + 1  # a float would make it 2**62
    lyrics, _, table = page.generate("", lines=4, temperature=3.0, seed=str(seed))
    assert measures_of(table)["seed"] == seed
    assert page.generate("", lines=4, temperature=3.0, seed=seed)[0] == lyrics
