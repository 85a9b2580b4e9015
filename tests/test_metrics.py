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
