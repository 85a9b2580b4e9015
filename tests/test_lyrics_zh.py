"""lyrics_zh: modern pop lyrics for pre-training, cleaned as a reader would want them (lyricgen.data.cleaning)."""

from __future__ import annotations

import hashlib
import logging

import pytest
from hydra.utils import instantiate

from lyricgen.data.cleaning import clean_lyrics_zh, join_words
from lyricgen.data.tokenizer import NEWLINE
from lyricgen.errors import LyricgenError
from tests.conftest import ROOT, compose_train

JAY = ["星星 在 天上 闪烁", "我 爱 你到 永远", "故事的小黄花"]  # a Jay Chou corpus of three lines (its own spacing)
LYRICS = [
    "盼望 的 爱情",  # kept: 盼望的爱情
    "<unk> 我 俩 <unk> 多",  # <unk>: its text is lost
    "演唱 毛宁",  # a credit line
    "词 李宗盛 曲 李宗盛",  # a credit line
    "故事 的 小 黄花",  # a Jay Chou line, spaced otherwise: dropped
    "唱 出 我 的 爱",  # 唱 opens lyrics far more often than credits: kept
    "I love you 宝贝",  # Latin words keep their spaces
]


def test_cleaning_drops_unk_credit_and_jay_chou_lines_and_joins_the_words():
    kept, counts = clean_lyrics_zh(LYRICS, excluded=JAY)
    assert kept == ["盼望的爱情", "唱出我的爱", "I love you宝贝"]
    assert (counts.read, counts.unk, counts.credits, counts.excluded, counts.kept) == (7, 1, 2, 1, 3)
    assert "2 credit lines" in counts.summary() and "1 lines of the excluded corpus" in counts.summary()


def test_words_are_joined_without_their_spaces_but_latin_words_keep_theirs():
    assert join_words("也 不 要 问 我 为什 么") == "也不要问我为什么"  # its odd segmentation undone
    assert join_words("oh baby 我 爱 你 2 0 0 8") == "oh baby我爱你2 0 0 8"


def _lyrics_zh_folder(tmp_path):
    """A lyrics_zh of hand-made lines in its three files, served from a local folder (file:// URLs, no network),
    and a Jay Chou corpus to exclude."""
    source = tmp_path / "server"
    source.mkdir()
    lines = [f"第 {i} 句 歌词 在 这里" for i in range(60)]
    files = {"train.txt": lines[:48] + LYRICS, "valid.txt": lines[48:54], "test.txt": lines[54:]}
    for name, text in files.items():
        (source / name).write_text("\n".join(text) + "\n", encoding="utf-8")
    jay = tmp_path / "jay.txt"
    jay.write_text("\n".join(JAY) + "\n", encoding="utf-8")
    sha = {name: hashlib.sha256((source / name).read_bytes()).hexdigest() for name in files}
    return source, jay, sha


def test_data_lyrics_zh_downloads_checks_cleans_and_splits(tmp_path, caplog):
    source, jay, sha = _lyrics_zh_folder(tmp_path)
    overrides = [
        "data=lyrics_zh",
        f"paths.data_dir={tmp_path / 'data'}",
        f"data.url={source.as_uri()}",
        f"data.exclude.path={jay}",
        "data.exclude.member=null",
        "data.exclude.sha256=null",
        "data.exclude.url=null",
        "data.seq_len=8",
        "data.batch_size=2",
    ]
    cfg = compose_train(overrides, tmp_path)
    cfg.data.files = sha  # (a file name holds a dot: set here, not as an override)
    assert cfg.data.url.startswith("file://")
    dm = instantiate(cfg.data)
    with caplog.at_level(logging.INFO, logger="lyricgen.data.source"):
        dm.prepare_data()
        dm.setup("fit")
    assert "lyrics_zh cleaned: 67 lines read; dropped 1 holding <unk>, 2 credit lines, 1 lines" in caplog.text
    lines = {s: "".join(dm.tokens(s)).split(NEWLINE)[:-1] for s in dm.SPLITS}
    text = "\n".join(line for s in dm.SPLITS for line in lines[s])
    assert "<unk>" not in text and "毛宁" not in text and "故事的小黄花" not in text and "盼望的爱情" in text
    assert lines["test"][-1] == "第59句歌词在这里"  # the three files in order, test.txt last
    assert sum(map(len, lines.values())) == 63 and len(lines["test"]) == 6  # protocol v2 over the 63 lines
    assert (tmp_path / "data" / "lyrics_zh" / "valid.txt").read_bytes() == (source / "valid.txt").read_bytes()


def test_a_lyrics_zh_folder_without_its_files_is_refused_in_one_line(tmp_path):
    from lyricgen.data.source import read_songs

    (tmp_path / "train.txt").write_text("一\n", encoding="utf-8")
    with pytest.raises(LyricgenError, match="lacks valid.txt, test.txt"):
        read_songs(tmp_path, format="lyrics_zh")


def test_the_real_lyrics_zh_is_cleaned_as_documented(tmp_path):
    """The counts that docs/corpora.md gives, on the real files (CI copies them from ../shared/data)."""
    from lyricgen.data.source import read_songs

    folder, jay = ROOT / "data" / "lyrics_zh", ROOT / "data" / "jaychou_lyrics.txt.zip"
    if not (folder / "test.txt").is_file() or not jay.is_file():
        pytest.skip(
            "data/lyrics_zh/ or the Jay Chou corpus is missing: copy them from ../shared/data (as .ci/run does)"
        )
    (song,), _ = read_songs(folder, format="lyrics_zh", exclude={"path": jay, "member": "jaychou_lyrics.txt"})
    assert len(song) == 78_200 and song[0] == "盼望的爱情"
