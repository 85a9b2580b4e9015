"""An open vocabulary: a word outside the vocabulary is written as its characters, `<unk>` is left for characters
the training split never has, bits per character charge every character; checkpoints made before it still work."""

from __future__ import annotations

import logging
import math
import shutil

import pytest
import torch

from lyricgen.checkpoint import load_checkpoint, read_extras
from lyricgen.data.datamodule import LyricsDataModule
from lyricgen.data.encoding import UNICODE_CHARS, Speller, TypeIds
from lyricgen.data.tokenizer import JiebaTokenizer, SentencePieceTokenizer, from_settings
from lyricgen.data.vocab import Vocab
from lyricgen.generation import LyricsGenerator
from tests.conftest import best_checkpoint, run_script, tiny_overrides, train_in_process, write_tiny_corpus

TRAIN = ["星星 在天上", "我 爱 你", "星星 爱 你", "月亮 在天上"]


def test_an_unknown_word_becomes_its_characters_and_a_never_seen_character_unk():
    vocab = Vocab.build([t for line in TRAIN for t in line.split()], min_freq=2, chars=True)
    assert {"星星", "在天上", "爱", "你"} <= set(vocab.itos)  # the words of min_freq
    assert "月亮" not in vocab and {"月", "亮", "我"} <= set(vocab.itos)  # every character of the training split
    assert vocab.open_tokens(["月亮", "星星", "太阳"]) == ["月", "亮", "星星", "太", "阳"]
    assert vocab.encode(vocab.open_tokens(["太阳"])) == [vocab.unk_id, vocab.unk_id]  # never seen: <unk>
    words_only = Vocab.build([t for line in TRAIN for t in line.split()], min_freq=2)
    assert "月" not in words_only and words_only.encode(["月亮"]) == [words_only.unk_id]  # lyricgen before 0.3


def test_a_corpus_stream_is_expanded_as_the_token_lists_would_be():
    types = ["星星", "月亮", "\n", "太阳", "爱"]
    vocab = Vocab(["<unk>", "星星", "\n", "月", "亮", "爱"])
    speller = Speller({"星": 2, "月": 1, "亮": 1, "爱": 1, "\n": 2}, one_char=True)
    ids = TypeIds(types, vocab, char_fallback=True, speller=speller)
    stream = [0, 1, 2, 3, 4, 1]
    expected = vocab.encode(vocab.open_tokens([types[i] for i in stream]))
    assert ids.ids(stream).tolist() == expected == [1, 3, 4, 2, 0, 0, 5, 3, 4]
    # 太阳: two characters never seen, each charged Witten-Bell's escape (5 kinds of the 7 training characters) and
    # one of the rest of Unicode
    assert ids.unk_bits[3] == pytest.approx(2 * (math.log2(12 / 5) + math.log2(UNICODE_CHARS - 5)))
    assert ids.unk_bits[[0, 1, 2, 4]].sum() == 0
    assert ids.first_chars.tolist() == [2, 1, 1, 1, 1]  # the first piece of 月亮 is 月


def test_without_fallback_an_unk_word_is_spelt_with_its_length():
    speller = Speller({"月": 3, "亮": 1}, one_char=False, mean_length=2.0)  # P(length n) = 0.5^n
    expected = math.log2(6 / 3) + math.log2(6 / 1) + 2.0  # 月 and 亮 of 4 characters and 2 kinds, a length of 2
    assert speller.bits("月亮") == pytest.approx(expected)
    assert speller.bits("日") == pytest.approx(math.log2(6 / 2) + math.log2(UNICODE_CHARS - 2) + 1.0)  # new, length 1


def test_bpc_counts_every_character_as_computed_outside_the_project(tmp_path):
    """test/bpc of a trained model equals the figure computed by hand from its per-token log-probabilities:
    the bits of every predicted token, and for each <unk> the bits to spell its character, over every character
    of the test lines after the first token."""
    corpus = write_tiny_corpus(tmp_path / "c.txt", "太阳照着大海", "风吹过安静的夜晚")
    run = tmp_path / "run"
    result = train_in_process(
        tiny_overrides(corpus, tmp_path, "trainer.max_epochs=3", "data.eval_seq_len=1000"),
        run,
    )
    dm = LyricsDataModule(str(corpus), val_fraction=0.2, seq_len=32, batch_size=2)
    dm.setup("fit")
    gen = LyricsGenerator.from_checkpoint(result["best_ckpt"])
    assert gen.vocab == dm.vocab
    text = "".join(dm.tokens("test"))  # the test lines as written
    pieces = gen.written(dm.tokens("test"))
    assert "太" in text and "太" not in gen.vocab  # a character the training split never has: <unk>
    ids = torch.tensor(gen.vocab.encode(pieces))
    with torch.no_grad():
        logits, _ = gen.net(ids[None, :-1])
    bits = -torch.log_softmax(logits[0], -1).gather(1, ids[1:, None]).sum().item() / math.log(2)
    train_text = "".join(dm.tokens("train"))
    n, a = len(train_text), len(set(train_text))  # Witten-Bell: a new character escapes, then is one of Unicode's
    spell = {c: math.log2((n + a) / a) + math.log2(UNICODE_CHARS - a) for c in set(text) - set(train_text)}
    bits += sum(spell[p] for p in pieces[1:] if p not in gen.vocab)
    chars = len(text) - len(pieces[0])
    assert result["test_bpc"] == pytest.approx(bits / chars, rel=1e-4)
    assert result["unk_share_test"] == pytest.approx(sum(p not in gen.vocab for p in pieces[1:]) / (len(pieces) - 1))


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """A run made before the open vocabulary: trained without char fallback, its checkpoints' tokeniser settings
    as lyricgen 0.2 wrote them (no `char_fallback`), its saved config without the option."""
    base = tmp_path_factory.mktemp("old")
    corpus = write_tiny_corpus(base / "tiny.txt")
    run = base / "outputs" / "2025-01-01" / "00-00-00"
    overrides = tiny_overrides(corpus, base, "trainer.max_epochs=12", "data.tokenizer.char_fallback=false")
    train_in_process(overrides, run)
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        del saved["lyricgen"]["tokenizer"]["char_fallback"]
        torch.save(saved, ckpt)
    config = run / ".hydra" / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("    char_fallback: false\n", ""), encoding="utf-8")
    assert "char_fallback" not in config.read_text(encoding="utf-8")
    return run


def test_a_checkpoint_made_before_the_open_vocabulary_generates_and_evaluates_as_before(old_run, tmp_path):
    ckpt = best_checkpoint(old_run)
    vocab, tokenizer, _ = read_extras(load_checkpoint(ckpt))
    assert "char_fallback" not in tokenizer and not from_settings(tokenizer).char_fallback
    gen = run_script("generate", f"ckpt_path={ckpt}", "start_word=星星", "seed=1", "lines=2")
    assert gen.returncode == 0 and gen.stdout.startswith("星星"), gen.stderr[-2000:]
    unknown = run_script("generate", f"ckpt_path={ckpt}", "start_word=太阳")  # no fallback: a word it lacks
    assert unknown.returncode == 2 and "'太阳' is not in the model's vocabulary" in unknown.stderr
    evaluated = run_script("evaluate", f"ckpt_path={ckpt}", "num_samples=2", "cache=none")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "| test/bpc |" in evaluated.stdout and "| test/unk share |" in evaluated.stdout
    corpus = old_run.parents[2] / "tiny.txt"
    resumed = run_script("train", *tiny_overrides(corpus, tmp_path), f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path}")
    assert resumed.returncode == 2 and "tokenizer char_fallback False in the checkpoint, True here" in resumed.stderr


def test_a_new_checkpoint_spells_out_a_start_word_it_does_not_know(trained_run):
    gen = LyricsGenerator.from_checkpoint(best_checkpoint(trained_run))
    assert gen.tokenizer.char_fallback and "月光" not in gen.vocab  # 月 is a character of the tiny corpus
    with pytest.raises(Exception, match="'月光' is not in the model's vocabulary .*never seen the character '光'"):
        gen.generate("月光")
    assert gen.generate("天月", seed=0, lines=1)[0].startswith("天月")  # two known characters, not one word


def test_jieba_settings_say_whether_words_fall_back_and_old_ones_do_not():
    assert JiebaTokenizer().settings["char_fallback"] is True
    assert from_settings({"name": "jieba", "hmm": True}).char_fallback is False  # a checkpoint of lyricgen 0.2
    assert "char_fallback" not in JiebaTokenizer().cache_settings  # the tokens (and their cache) do not change


def test_sentencepiece_is_learnt_on_the_training_split_and_travels_in_the_checkpoint(tmp_path):
    """Trained on the training lines alone, byte fallback (no <unk>, even for characters it never saw); a
    checkpoint alone (no corpus, no cache) generates with it, loaded with weights_only; the form is refused."""
    corpus = write_tiny_corpus(tmp_path / "c.txt", "太阳照着大海")  # a test line of new characters
    sp = ["tokenizer=sentencepiece", "data.tokenizer.vocab_size=300", "data.seq_len=16"]
    result = train_in_process(tiny_overrides(corpus, tmp_path, "trainer.max_epochs=3", *sp), tmp_path / "run")
    assert result["unk_share_test"] == 0.0 and result["test_bpc"] > 0
    ckpt = tmp_path / "model.ckpt"
    shutil.copy(result["best_ckpt"], ckpt)
    shutil.rmtree(tmp_path / "run")
    shutil.rmtree(tmp_path / "data")  # its cache: the learnt model is in the checkpoint, nowhere else
    corpus.unlink()
    vocab, settings, _ = read_extras(load_checkpoint(ckpt))  # weights_only
    assert settings["name"] == "sentencepiece" and isinstance(settings["model"], bytes)
    tokenizer = from_settings(settings)
    assert tokenizer.tokenize_line("太阳") == ["<0xE5>", "<0xA4>", "<0xAA>", "<0xE9>", "<0x98>", "<0xB3>"]
    assert tokenizer.join(tokenizer.tokenize("星星在天上\n太阳")) == "星星在天上\n太阳"
    assert "太" not in "".join(vocab.itos) and all(t in vocab for t in tokenizer.tokenize("太阳"))
    out = run_script("generate", f"ckpt_path={ckpt}", "start_word=太阳", "seed=0", "lines=2")
    assert out.returncode == 0 and out.stdout.startswith("太阳"), out.stderr[-2000:]
    form = run_script("generate", f"ckpt_path={ckpt}", "rhyme=AA")
    assert form.returncode == 2 and "work with the jieba and char tokenisers" in form.stderr.splitlines()[-1]


def test_sentencepiece_is_learnt_once_and_read_back_from_the_cache(tmp_path, tiny_corpus, caplog):
    def setup():
        dm = LyricsDataModule(
            str(tiny_corpus), seq_len=8, batch_size=2, cache_dir=str(tmp_path), tokenizer=SentencePieceTokenizer(300)
        )
        dm.setup("fit")
        return dm

    with caplog.at_level(logging.INFO, logger="lyricgen.data.datamodule"):
        first, second = setup(), setup()
    assert "learnt from the 96 training lines" in caplog.text and "read from" in caplog.text
    assert first.tokenizer.model == second.tokenizer.model and first.vocab == second.vocab
    assert len(first.vocab) == len(first.tokenizer.fixed_tokens()) + 2  # its pieces, <unk> and the line break


def test_sentencepiece_without_a_cache_is_learnt_in_the_run(tiny_corpus):
    dm = LyricsDataModule(
        str(tiny_corpus), seq_len=8, batch_size=2, cache_dir=None, tokenizer=SentencePieceTokenizer(300)
    )
    dm.setup("fit")
    assert dm.tokenizer.model and len(dm.vocab) == len(dm.tokenizer.fixed_tokens()) + 2
