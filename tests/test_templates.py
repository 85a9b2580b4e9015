"""Tune templates (词牌): mined from a tiny hand-made corpus of ci, met exactly by a tiny trained model, measured."""

from __future__ import annotations

import pytest

from lyricgen.decoding.templates import (
    Template,
    clauses_of,
    mine_templates,
    rhyme_hits,
    templates_from_dict,
    templates_to_dict,
    tune_of,
)
from lyricgen.errors import LyricgenError
from lyricgen.metrics import tune_metrics
from tests.conftest import REAL_CI, assert_user_error, run_script, songci_overrides, train_in_process, write_songci

SONGS = [[f"《{r['rhythmic']}》", *r["paragraphs"]] for r in REAL_CI]


def test_clauses_titles_and_lost_characters():
    assert clauses_of("不分与花为近侍，难甘溱洧赠闲人。") == [("不分与花为近侍", "，"), ("难甘溱洧赠闲人", "。")]
    assert clauses_of("□□春色，") == [("□□春色", "，")]  # a lost character (□) still fills its slot
    assert tune_of("《浣溪沙》") == "浣溪沙" and tune_of("浣溪沙") is None


def test_mining_takes_each_tunes_commonest_shape_and_the_clause_ends_that_rhyme():
    odd = ["《浣溪沙》", "一曲新词酒一杯，去年天气旧亭台。"]  # another shape, in one ci of four
    templates = mine_templates([*SONGS, odd])
    huan = templates["浣溪沙"]
    assert huan.clauses == [(7, "。"), (7, "。"), (7, "。"), (7, "，"), (7, "。"), (7, "。")]
    assert huan.line_ends == [0, 1, 2, 4, 5] and (huan.count, huan.shape_count) == (4, 3)
    assert huan.rhyme == "AAAXAA"  # every 。 rhymes (人辰 in two ci, 江阳 in one); the comma does not
    assert templates["菩萨蛮"].rhyme == "AABBCCDD"  # four rhymes, a pair each
    assert huan.shape_text() == "7A。 / 7A。 / 7A。 / 7，7A。 / 7A。"
    again = templates_from_dict(templates_to_dict(templates, "shisan"))  # as a checkpoint carries them
    assert again["菩萨蛮"] == templates["菩萨蛮"]


def test_format_and_rhyme_accuracy_of_real_and_broken_ci():
    templates = mine_templates(SONGS)
    real = [(song[1:], templates[tune_of(song[0])]) for song in SONGS]
    assert tune_metrics(real)["format accuracy"] == 1.0
    lines, tpl = real[0]
    assert rhyme_hits(lines, tpl) == (5, 5)
    broken = [*lines[:-1], "如羞如怨独含笑。"]  # 笑 (遥条) leaves the 人辰 rhyme
    assert rhyme_hits(broken, tpl) == (4, 5)
    short = [*lines[:-1], "如羞如怨含颦。"]  # six characters where the tune has seven
    figures = tune_metrics([(lines, tpl), (short, tpl)])
    assert figures["format accuracy"] == 0.5 and figures["rhyme accuracy"] == 1.0


@pytest.fixture(scope="module")
def ci_model(tmp_path_factory):
    """A small character model trained on the six real ci, 30 times over: a checkpoint with their templates."""
    base = tmp_path_factory.mktemp("songci")
    folder = write_songci(base / "songci", copies=30)
    run_dir = base / "run"
    result = train_in_process(songci_overrides(folder, base), run_dir)
    return run_dir, result


def test_a_trained_model_writes_a_whole_ci_in_its_tunes_template(ci_model):
    from lyricgen.generation import LyricsGenerator

    run_dir, _ = ci_model
    gen = LyricsGenerator.from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    tpl: Template = gen.template("浣溪沙")
    assert tpl.rhyme == "AAAXAA"
    texts = gen.generate("", seed=0, cipai="浣溪沙", num_samples=4, temperature=1.0)
    for text in texts:
        title, *lines = text.split("\n")
        assert title == "《浣溪沙》" and len(lines) == 5
        assert tpl.matches(lines), text
        assert rhyme_hits(lines, tpl) == (5, 5), text
    acro = gen.generate("", seed=1, cipai="菩萨蛮", acrostic="小溪", temperature=1.0)[0].split("\n")
    assert acro[1].startswith("小") and acro[2].startswith("溪")
    assert gen.template("菩萨蛮").matches(acro[1:])
    with_keywords = gen.generate("", seed=2, cipai="浣溪沙", keywords=["月", "香"], num_samples=2)
    for text in with_keywords:
        assert "月" in text and "香" in text and tpl.matches(text.split("\n")[1:]), text
    with pytest.raises(LyricgenError, match="has 9 characters but 菩萨蛮 has 8 clauses"):
        gen.generate("", cipai="菩萨蛮", acrostic="小楼金鸭鹊翠细脸云")
    started = gen.generate("东阁", seed=3, cipai="浣溪沙")[0].split("\n")  # start_word begins the first clause
    assert started[1].startswith("东阁") and tpl.matches(started[1:])


def test_unknown_tunes_and_cipai_list(ci_model):
    run_dir, _ = ci_model
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    listed = run_script("generate", f"ckpt_path={ckpt}", "cipai=list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith(
        "浣溪沙\t72 ci\t100% in this shape\t7A。 / 7A。"
    )  # 144 training ci, half of them 浣溪沙
    wrong = run_script("generate", f"ckpt_path={ckpt}", "cipai=浣沙溪")
    assert_user_error(wrong, "cipai='浣沙溪' is not a tune this model knows; nearest known tunes: 浣溪沙")
    clash = run_script("generate", f"ckpt_path={ckpt}", "cipai=浣溪沙", "rhyme=AABB")
    assert_user_error(clash, "leave out rhyme, line_chars and lines")


def test_a_model_without_templates_refuses_cipai(trained_run):
    from lyricgen.generation import LyricsGenerator
    from tests.conftest import best_checkpoint

    gen = LyricsGenerator.from_checkpoint(best_checkpoint(trained_run))
    with pytest.raises(LyricgenError, match="has no tune templates .* experiment=songci_char"):
        gen.generate("", cipai="浣溪沙")


def test_the_page_offers_the_models_tunes_and_writes_a_ci(ci_model):
    from lyricgen.app.models import Models
    from lyricgen.app.page import LyricsPage

    run_dir, _ = ci_model
    models = Models(run_dir.parent)
    page = LyricsPage(models)
    assert page.tune_choices() == [("none", "")]  # no model loaded yet
    models.load(run_dir / "checkpoints" / "last.ckpt")
    tunes = [tune for _, tune in page.tune_choices()]
    assert tunes[0] == "" and set(tunes[1:]) == {"浣溪沙", "菩萨蛮"}
    lyrics, rows, _ = page.generate("", lines=3, seed=2, rhyme="AABB", cipai="菩萨蛮")  # the tune's form wins
    title, *lines = lyrics.split("\n")
    assert title == "《菩萨蛮》" and models.current.generator.template("菩萨蛮").matches(lines)
    with pytest.raises(LyricgenError, match="nearest known tunes: 菩萨蛮"):
        page.generate("", cipai="菩萨")


def test_evaluate_prints_songnets_measures_for_the_commonest_tunes(ci_model):
    run_dir, _ = ci_model
    out = run_script(
        "evaluate",
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        "num_samples=5",
        "tunes=2",
        "cache=none",
        "lines=4",
        "length=60",
    )
    assert out.returncode == 0, out.stderr
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in out.stdout.splitlines()}
    ours, free, real = rows["cipai= (form decoding)"], rows["unconstrained"], rows["real test ci"]
    assert ours[3:5] == ["1.000", "1.000"]  # format and rhyme accuracy of form decoding
    assert real[3] == "1.000" and real[-1].rstrip(" |") == "18"  # the 18 test ci, all in their tune's shape
    assert free[-1].rstrip(" |") == ours[-1].rstrip(" |") == "10"  # 5 ci of each of 2 tunes
    assert float(ours[1]) == pytest.approx(2 ** float(ours[2]), abs=0.01)  # character ppl = 2^bpc (as printed)
