import math

from lyricgen.metrics import distinct_n, lyric_metrics, novelty, repeated_line_rate

A = ["星星", "在", "天上", "\n", "我", "爱", "你", "\n"]
B = ["星星", "在", "天上", "\n", "星星", "在", "天上", "\n", "新", "的", "歌", "\n"]


def test_novelty_counts_lines_not_in_the_corpus():
    known = {"星星在天上", "我爱你"}
    assert novelty([A], known) == 0.0
    assert novelty([B], known) == 1 / 3  # two copied lines, one new
    assert novelty([A, B], known) == 1 / 5


def test_distinct_n_on_hand_made_examples():
    assert distinct_n([A], 1) == 1.0  # 6 words, all different
    assert distinct_n([B], 1) == 6 / 9  # 星星 在 天上 twice
    assert distinct_n([B], 2) == 6 / 8  # 8 pairs; (星星,在) and (在,天上) come twice
    assert distinct_n([["我", " ", "爱", "\n"]], 2) == 1.0  # breaks are not words: one pair
    assert math.isnan(distinct_n([["\n"]], 1))


def test_repeated_line_rate_within_each_sample():
    assert repeated_line_rate([A]) == 0.0
    assert repeated_line_rate([B]) == 1 / 3
    assert repeated_line_rate([A, B]) == (0 + 1 / 3) / 2


def test_all_metrics_together():
    m = lyric_metrics([B], ["星星在天上"])
    assert m == {"novelty": 1 / 3, "distinct-1": 6 / 9, "distinct-2": 6 / 8, "repeated-line rate": 1 / 3}


# --- form measures ---------------------------------------------------------------------------------

from lyricgen.data.ngrams import NgramIndex  # noqa: E402
from lyricgen.metrics import (  # noqa: E402
    acrostic_accuracy,
    copy_stats,
    form_metrics,
    line_length_accuracy,
    rhyme_rate,
    scheme_accuracy,
)

# 光/伤 江阳, 飞/回 灰堆, 家 发花
RHYMED = ["月", "光", "\n", "我", " ", "受伤", "\n", "鸟", "飞", "\n", "你", "回", "\n", "回", "家", "\n"]


def test_rhyme_rate_counts_adjacent_pairs():
    assert rhyme_rate([RHYMED]) == 2 / 4  # 光-伤 yes, 伤-飞 no, 飞-回 yes, 回-家 no
    assert rhyme_rate([RHYMED[:6], RHYMED[6:]]) == (1 + 1) / (1 + 2)  # pairs stay inside a sample


def test_scheme_accuracy_compares_each_line_with_the_previous_line_of_its_letter():
    assert scheme_accuracy([RHYMED[:12]], "AABB") == 1.0
    assert scheme_accuracy([RHYMED[:12]], "ABAB") == 0.0
    assert scheme_accuracy([RHYMED[:12]], "XAXA") == 0.0  # 伤 and 回
    assert scheme_accuracy([RHYMED], "AABB") == 2 / 3  # line 5 (家) is an A again, after 伤


def test_line_length_and_acrostic_accuracy():
    assert line_length_accuracy([RHYMED], [2]) == 4 / 5  # 我 受伤: 3 (spaces do not count)
    assert line_length_accuracy([RHYMED], [2, 3]) == 4 / 5  # 2 3 2 3 2 against 2 3 2 2 2
    assert acrostic_accuracy([RHYMED], "月我鸟") == 1.0
    assert acrostic_accuracy([RHYMED], "月你") == 0.5


def test_copy_rate_and_longest_run():
    stoi = {"<unk>": 0, "我": 1, "爱": 2, "你": 3, "们": 4}
    index = NgramIndex.from_tokens(["我", "爱", "你", "们", "\n"], stoi, max_n=8)
    samples = [["我", "爱", "你", "\n", "你", "爱", "我", "\n"]]
    assert copy_stats(samples, index, stoi, 3) == (0.5, 3)
    assert copy_stats(samples, index, stoi, 4) == (0.0, 3)
    m = form_metrics(samples, index, stoi, rhyme="AA", line_chars=[3], acrostic="我你", copy_n=2)
    assert m["copy rate (>= 2 words)"] == 0.5 and m["line-length accuracy"] == 1.0 and m["acrostic accuracy"] == 1.0
