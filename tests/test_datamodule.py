import pytest

from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.tokenizer import NEWLINE
from lyricgen.errors import LyricgenError


def make(path, tmp_path, **kw):
    kw = {"seq_len": 5, "batch_size": 4, "min_freq": 1, "cache_dir": str(tmp_path / "cache"), **kw}
    dm = LyricsDataModule(str(path), **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_validation_is_the_last_lines_and_vocab_comes_from_training(tmp_path):
    lines = [f"第{i}行 歌词" for i in range(18)] + ["最后 的 秘密", "只在 验证 里"]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    dm = make(path, tmp_path, val_fraction=0.1)
    val_text = "".join(dm.val_tokens).split(NEWLINE)
    assert val_text[:-1] == ["最后 的 秘密", "只在 验证 里"]  # the last 10% of the lines, in order
    assert "".join(dm.train_tokens).split(NEWLINE)[:-1] == lines[:18]
    assert "秘密" not in dm.vocab and "秘密" in dm.val_tokens  # validation words are not in the vocab


def test_folder_corpus_splits_by_whole_songs(tmp_path):
    for i in range(10):
        (tmp_path / f"song{i}.txt").write_text("\n".join(f"歌{i} 第{j}句" for j in range(6)), encoding="utf-8")
    dm = make(tmp_path, tmp_path, val_fraction=0.25)
    val_lines = "".join(dm.val_tokens).split(NEWLINE)[:-1]
    train_lines = "".join(dm.train_tokens).split(NEWLINE)[:-1]
    assert {line.split()[0] for line in val_lines} == {"歌7", "歌8", "歌9"}  # whole songs from the end
    assert not {line.split()[0] for line in train_lines} & {"歌7", "歌8", "歌9"}


def test_batches_have_the_configured_shape(tmp_path, tiny_corpus):
    dm = make(tiny_corpus, tmp_path)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 5)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"seq_len": 0}, "seq_len"),
        ({"batch_size": 0}, "batch_size"),
        ({"min_freq": 0}, "min_freq"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": 0}, "val_fraction"),
    ],
)
def test_out_of_range_settings_are_refused(tmp_path, tiny_corpus, kw, message):
    with pytest.raises(LyricgenError, match=message):
        LyricsDataModule(str(tiny_corpus), **kw)


def test_too_short_corpus_says_how_many_tokens(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("星星\n月亮\n", encoding="utf-8")
    with pytest.raises(LyricgenError, match=r"too short: 4 tokens .* needs at least data.seq_len \+ 1 = 6"):
        make(path, tmp_path)
