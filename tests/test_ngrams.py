"""The hashed n-gram index of the training split: runs inside lines, round trip through a checkpoint."""

import torch

from lyricgen.data.ngrams import NgramIndex, word_lines

TOKENS = ["星星", "在", " ", "天上", "闪烁", "\n", "我", "爱", "你", "\n", "<unk>", "在", "天上", "\n"]
STOI = {"<unk>": 0, "星星": 1, "在": 2, "天上": 3, "闪烁": 4, "我": 5, "爱": 6, "你": 7}


def test_word_lines_drop_spaces_and_split_on_line_breaks():
    assert word_lines(TOKENS) == [["星星", "在", "天上", "闪烁"], ["我", "爱", "你"], ["<unk>", "在", "天上"]]


def test_runs_are_found_inside_lines_only():
    index = NgramIndex.from_tokens(TOKENS, STOI, max_n=4)
    assert index.contains([1, 2]) and index.contains([2, 3, 4]) and index.contains([1, 2, 3, 4])
    assert index.contains([5, 6, 7]) and not index.contains([7, 5])  # 你 \n 我 crosses a line break
    assert not index.contains([4, 5])  # 闪烁 | 我: across lines
    assert not index.contains([0, 2])  # runs with <unk> are left out
    assert sorted(index.followers([2]).tolist()) == [3]  # 在 -> 天上 (twice in training, once in the index)
    assert index.longest_run([9, 1, 2, 3, 8]) == (3, 1)
    assert index.longest_run([5, 7]) == (0, 0)


def test_longest_run_is_capped_at_max_n():
    index = NgramIndex.build([[1, 2, 3, 4, 5, 6]], max_n=3)
    assert index.longest_run([1, 2, 3, 4, 5, 6]) == (3, 0)


def test_round_trip_through_torch_save(tmp_path):
    index = NgramIndex.from_tokens(TOKENS, STOI, max_n=5)
    torch.save({"ngrams": index.to_dict()}, tmp_path / "x.pt")
    back = NgramIndex.from_dict(torch.load(tmp_path / "x.pt", weights_only=True)["ngrams"])
    assert back.max_n == 5 and len(back) == len(index) > 0
    assert back.contains([1, 2, 3]) and not back.contains([3, 2])
