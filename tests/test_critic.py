"""The critic on a hand-made text with known rhyme classes, through the library and the script."""

import math

from lyricgen.critic import critique, detect_scheme
from lyricgen.generation import LyricsGenerator
from tests.conftest import TINY_LINES, assert_user_error, best_checkpoint, run_script

# classes by hand: 光 江阳, 伤 江阳, 飞 灰堆, 家 发花, 回 灰堆
TEXT = "我看着月光\n你说你受伤\n\n鸟儿飞\n星星在天上闪烁\n我回家\n"


def test_detect_scheme():
    assert detect_scheme(["江阳", "江阳", "灰堆", "发花", "灰堆"]) == "AABXB"
    assert detect_scheme([None, "一七", "一七"]) == "XAA"


def test_critic_reads_lines_classes_copies_and_perplexity(trained_run):
    gen = LyricsGenerator.from_checkpoint(best_checkpoint(trained_run))
    c = critique(gen, TEXT)
    assert [s.text for s in c.lines] == ["我看着月光", "你说你受伤", "鸟儿飞", "星星在天上闪烁", "我回家"]
    assert [s.chars for s in c.lines] == [5, 5, 3, 7, 3]
    assert [s.rhyme for s in c.lines] == ["江阳", "江阳", "灰堆", "梭波", "发花"]
    assert c.scheme == "AAXXX" and c.rhyme_rate == 1 / 4
    copied = [s.copied >= 4 for s in c.lines]
    assert copied == [False, False, False, True, False]  # a training line, word for word
    assert {"看", "光"} <= set(c.unknown)  # 看着, 月光: spelt out, the characters the tiny corpus never has are <unk>
    # the learnt line is far likelier than the others (which hold unknown words)
    assert 3 * c.lines[3].ppl < min(s.ppl for i, s in enumerate(c.lines) if i != 3)
    assert math.isfinite(c.ppl)


def test_critic_script_locates_copies_in_the_training_text(trained_run, tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(TEXT, encoding="utf-8")
    result = run_script("critic", f"path={path}", f"ckpt_path={best_checkpoint(trained_run)}")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "| 4 | 星星在天上闪烁 | 7 | 梭波 |" in out
    assert f"training line 1: {TINY_LINES[0]}" in out  # where: the run's corpus is at hand
    assert "scheme: AAXXX" in out and "rhyme rate: 0.25" in out
    assert out.strip().splitlines()[-1].startswith("perplexity: ")


def test_critic_script_refuses_bad_input(trained_run, tmp_path):
    missing = run_script("critic", f"path={tmp_path / 'none.txt'}", f"ckpt_path={best_checkpoint(trained_run)}")
    assert_user_error(missing, "error: lyrics file")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    blank = run_script("critic", f"path={empty}", f"ckpt_path={best_checkpoint(trained_run)}")
    assert_user_error(blank, "no non-blank line")
