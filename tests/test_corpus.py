"""The tokenised corpus: parallel tokenising gives the one-process tokens; the binary cache is mapped, checked
and rebuilt when damaged; the data module's figures read from it are those of the token lists."""

import json
import logging
from collections import Counter

import numpy as np
import pytest

from lyricgen.data import corpus as corpus_module
from lyricgen.data.corpus import TokenizedCorpus, load_or_tokenize, tokenize_corpus
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.source import read_songs
from lyricgen.data.tokenizer import NEWLINE, CharTokenizer, JiebaTokenizer, WordsTokenizer
from tests.conftest import ROOT

SONGS = [["星星 在天上", "我爱你"], ["月亮 照着 我们", "星星 在天上"]]


def one_process_tokens(songs, tokenizer):
    """What lyricgen 0.1 did: every line in turn, a newline token after each."""
    return [tok for song in songs for line in song for tok in (*tokenizer.tokenize_line(line), NEWLINE)]


def real_songs(name):
    path = ROOT / "data" / name
    if not path.is_file():
        pytest.skip(f"data/{name} is missing: copy it from ../shared/data (as .ci/run does)")
    return read_songs(path, blank_lines=name.endswith(".txt"))[0]


@pytest.mark.parametrize(
    "name, tokenizer",
    [
        ("jaychou_lyrics.txt.zip", JiebaTokenizer()),
        ("jaychou_lyrics.txt.zip", JiebaTokenizer(hmm=False)),
        ("tinyshakespeare.txt", CharTokenizer()),
        ("tinyshakespeare.txt", WordsTokenizer()),
    ],
)
def test_two_processes_give_the_one_process_tokens_of_a_real_corpus(monkeypatch, name, tokenizer):
    songs = real_songs(name)
    monkeypatch.setattr(corpus_module, "BLOCK_CHARS", 5_000)  # many blocks, so that the merge is exercised
    corpus = tokenize_corpus(songs, tokenizer, workers=2)
    expected = one_process_tokens(songs, tokenizer)
    assert corpus.tokens(0, len(corpus)) == expected
    assert len(corpus.types) == len(set(expected)) and corpus.ids.dtype == np.int32
    assert corpus.n_lines == sum(len(s) for s in songs) and int(corpus.song_lines.sum()) == corpus.n_lines
    # each line's characters, its line break included, are what the tokeniser writes it back as
    lines = [line for song in songs for line in song]
    for k in (0, 1, len(lines) // 2, len(lines) - 1):
        line = corpus.tokens(corpus.line_offset(k), corpus.line_offset(k + 1))
        assert line[-1] == NEWLINE and tokenizer.join(line[:-1]) == tokenizer.join(tokenizer.tokenize_line(lines[k]))
        assert corpus.line_chars[k] == tokenizer.text_length(line)


def test_folder_of_songs_keeps_song_boundaries():
    corpus = tokenize_corpus(SONGS, JiebaTokenizer(), workers=1)
    assert corpus.song_lines.tolist() == [2, 2]
    assert corpus.tokens(corpus.line_offset(2), corpus.line_offset(3)) == ["月亮", " ", "照着", " ", "我们", "\n"]
    assert corpus.types.count("星星") == 1  # one id per distinct token


def test_cache_is_mapped_not_tokenised_again(tmp_path, monkeypatch):
    expected = one_process_tokens(SONGS, JiebaTokenizer())
    first = load_or_tokenize(lambda: SONGS, JiebaTokenizer(), "abc", tmp_path)
    (folder,) = tmp_path.glob("tokens-*")
    assert sorted(p.name for p in folder.iterdir()) == [
        "ids.npy",
        "line_chars.npy",
        "line_ends.npy",
        "meta.json",
        "song_lines.npy",
    ]

    def no_reading():
        raise AssertionError("the corpus was read although the cache holds it")

    monkeypatch.setattr(JiebaTokenizer, "tokenize_line", lambda self, line: no_reading())
    again = load_or_tokenize(no_reading, JiebaTokenizer(), "abc", tmp_path)
    assert isinstance(again.ids, np.memmap)  # mapped from ids.npy, not parsed into a list
    assert again.tokens(0, len(again)) == first.tokens(0, len(first)) == expected
    assert again.song_lines.tolist() == [2, 2] and np.array_equal(again.line_chars, first.line_chars)


def test_cache_is_keyed_by_corpus_tokenizer_and_settings(tmp_path):
    text = [["Once upon a time, 星星"]]
    made = {
        name: load_or_tokenize(lambda: text, tok, corpus, tmp_path)
        for name, tok, corpus in [
            ("jieba", JiebaTokenizer(), "abc"),
            ("other corpus", JiebaTokenizer(), "other"),
            ("no hmm", JiebaTokenizer(hmm=False), "abc"),
            ("char", CharTokenizer(), "abc"),
            ("words", WordsTokenizer(), "abc"),
        ]
    }
    assert len(list(tmp_path.glob("tokens-*"))) == 5
    read_back = load_or_tokenize(lambda: 1 / 0, CharTokenizer(), "abc", tmp_path)  # read back, not mixed up
    assert read_back.tokens(0, 4) == made["char"].tokens(0, 4) == ["O", "n", "c", "e"]
    assert made["words"].tokens(0, 2) == ["Once", "upon"]


def damage(folder, how):
    if how == "truncated ids":
        data = (folder / "ids.npy").read_bytes()
        (folder / "ids.npy").write_bytes(data[: len(data) - 8])
    elif how == "changed ids":
        ids = np.load(folder / "ids.npy")
        np.save(folder / "ids.npy", ids[::-1].copy())
    elif how == "changed types":
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        meta["types"][0] = "篡改"
        (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    elif how == "half-written meta":
        text = (folder / "meta.json").read_text(encoding="utf-8")
        (folder / "meta.json").write_text(text[: len(text) // 2], encoding="utf-8")
    elif how == "missing file":
        (folder / "line_ends.npy").unlink()
    elif how == "foreign key":
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        meta["key"] = "0" * 64
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize(
    "how", ["truncated ids", "changed ids", "changed types", "half-written meta", "missing file", "foreign key"]
)
def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, caplog, how):
    good = load_or_tokenize(lambda: SONGS, JiebaTokenizer(), "abc", tmp_path).tokens(0, None)
    (folder,) = tmp_path.glob("tokens-*")
    damage(folder, how)
    with caplog.at_level(logging.WARNING):
        assert load_or_tokenize(lambda: SONGS, JiebaTokenizer(), "abc", tmp_path).tokens(0, None) == good
    assert "corrupt" in caplog.text and "rebuilding" in caplog.text
    key = json.loads((folder / "meta.json").read_text(encoding="utf-8"))["key"]
    assert TokenizedCorpus.load(folder, key).tokens(0, None) == good  # repaired on disk
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folder left behind


def test_old_json_cache_is_left_alone_and_not_read(tmp_path):
    old = tmp_path / "tokens-0123456789abcdef.json"
    old.write_text('{"key": "x", "digest": "y", "songs": [[["旧"]]]}', encoding="utf-8")
    corpus = load_or_tokenize(lambda: SONGS, JiebaTokenizer(), "abc", tmp_path)
    assert "旧" not in corpus.types and old.read_text(encoding="utf-8").startswith('{"key": "x"')


@pytest.mark.parametrize("char_fallback", [True, False], ids=["open", "words only"])
def test_data_module_reads_the_same_figures_from_ids_as_from_token_lists(tmp_path, char_fallback):
    """The set-up from the mapped ids against the token-list formulas of lyricgen 0.1 (a word outside the
    vocabulary written as its characters first, with char fallback), on the real corpus."""
    from lyricgen.data.vocab import Vocab

    path = ROOT / "data" / "jaychou_lyrics.txt.zip"
    if not path.is_file():
        pytest.skip("data/jaychou_lyrics.txt.zip is missing: copy it from ../shared/data (as .ci/run does)")
    tokenizer = JiebaTokenizer(char_fallback=char_fallback)
    cold = LyricsDataModule(str(path), cache_dir=str(tmp_path), tokenizer=tokenizer)
    cold.setup("fit")
    warm = LyricsDataModule(str(path), cache_dir=str(tmp_path), tokenizer=tokenizer)
    warm.setup("fit")
    assert isinstance(warm.corpus.ids, np.memmap) and not isinstance(cold.corpus.ids, np.memmap)
    for dm in (cold, warm):
        tokens = {split: dm.tokens(split) for split in dm.SPLITS}
        assert sum(map(len, tokens.values())) == 42_563
        assert dm.vocab == Vocab.build(tokens["train"], min_freq=2, chars=char_fallback, char_min_freq=2)
        written = {split: dm.vocab.open_tokens(t) if char_fallback else t for split, t in tokens.items()}
        for split in dm.SPLITS:
            assert getattr(dm, f"{split}_ids").tolist() == dm.vocab.encode(written[split])
        for split in ("val", "test"):
            held = written[split]
            assert dm.chars[split].chars_per_token == pytest.approx(
                dm.tokenizer.text_length(held[1:]) / (len(held) - 1)
            )
        old = NgramIndex.from_tokens(written["train"], dm.vocab.stoi, 8)
        new = dm.training_ngrams(8)
        assert all(np.array_equal(old.contexts[n], new.contexts[n]) for n in range(2, 9))
        assert all(np.array_equal(old.nexts[n], new.nexts[n]) for n in range(2, 9))
    held = written["test"][1:]
    unknown = [t for t in held if t not in cold.vocab]
    assert cold.unk_share["test"] == pytest.approx(len(unknown) / len(held))
    if char_fallback:  # <unk> is left for characters the training split has fewer than twice: 6.4% of the test
        train_chars = Counter("".join(tokens["train"]))
        assert all(len(t) == 1 and train_chars[t] < 2 for t in unknown)
        assert 0.06 < cold.unk_share["test"] < 0.07
    else:  # words the training split has fewer than twice: a quarter of the test tokens
        assert 0.24 < cold.unk_share["test"] < 0.25


@pytest.mark.slow
def test_the_real_songci_corpus_splits_into_whole_ci_each_with_its_title_line(tmp_path):
    folder = ROOT / "data" / "songci"
    if not folder.is_dir():
        pytest.skip("data/songci is missing: copy it from ../shared/data (as .ci/run does)")
    dm = LyricsDataModule(folder, format="songci", tokenizer=CharTokenizer(), cache_dir=tmp_path, seq_len=100)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.corpus.song_lines) == 21_050  # every ci of the collection
    splits = {split: dm.songs(split) for split in dm.SPLITS}
    assert sum(map(len, splits.values())) == 21_050  # each ci in one split, whole, beginning with its title line
    total = int(dm.corpus.song_lines.sum())
    for split in ("val", "test"):  # 10% of the lines each, in whole ci: at most one ci more
        start, stop = dm.lines[split]
        assert total * 0.1 <= stop - start < total * 0.1 + max(map(len, splits[split]))
    assert splits["train"][0][:2] == ["《导引》", "气和玉烛，睿化著鸿明。"]  # the collection's first ci
    assert all(song[0].startswith("《") and song[0].endswith("》") for s in splits.values() for song in s)
    lines = dm.lines
    assert lines["train"][1] == lines["val"][0] and lines["val"][1] == lines["test"][0]
    assert int(dm.corpus.song_lines[: len(splits["train"])].sum()) == lines["train"][1]  # a split begins a ci
