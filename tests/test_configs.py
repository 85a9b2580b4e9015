"""Every option of every config group composes, and the objects it names can be built."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from tests.conftest import CONF, compose_train

# The options the README documents, typed here (not read from the folders they are checked against).
GROUPS = {
    "data": ["jaychou", "lyrics_zh", "shakespeare", "songci", "text"],
    "tokenizer": ["char", "jieba", "sentencepiece", "words"],
    "model": ["gru", "lstm", "rnn"],
    "trainer": ["cpu", "ddp", "default", "gpu"],
    "callbacks": ["default"],
    "logger": ["csv", "many", "tensorboard"],
    "cache": ["default", "none"],
    "debug": ["default", "fdr", "limit", "overfit", "profiler"],
    "hparams_search": ["jaychou_optuna"],
    "experiment": [
        "d2l_jaychou",
        "jaychou_best",
        "jaychou_finetune",
        "lyrics_zh",
        "novel_char",
        "shakespeare_char",
        "songci_char",
        "tf_shakespeare",
    ],
}


def test_each_group_holds_exactly_the_documented_options():
    found = {g: sorted(p.stem for p in (Path(CONF) / g).glob("*.yaml")) for g in GROUPS}
    assert found == GROUPS


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_option_composes_and_builds(group, option, tmp_path, tiny_corpus):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "text":
        overrides.append(f"data.path={tiny_corpus}")
    cfg = compose_train(overrides, tmp_path)
    model = instantiate(cfg.model, vocab_size=3000)  # a vocabulary that songci_char's adaptive cutoffs fit
    assert model.hparams.vocab_size == 3000
    if group == "trainer" and option != "gpu":
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert trainer.max_epochs == cfg.trainer.max_epochs
    for name, cb in (cfg.callbacks or {}).items():
        assert cb is None or instantiate(cb) is not None, name  # null: a callback the experiment turns off
    for name, lg in (cfg.logger or {}).items():
        assert instantiate(lg) is not None, name


@pytest.mark.parametrize("cell, module", [("rnn", nn.RNN), ("gru", nn.GRU), ("lstm", nn.LSTM)])
def test_model_option_picks_its_cell_and_keeps_the_rest_of_rnn_yaml(cell, module, tmp_path):
    cfg = compose_train([f"model={cell}"], tmp_path)
    rnn = compose_train(["model=rnn"], tmp_path).model
    assert {k: v for k, v in cfg.model.items() if k != "cell"} == {k: v for k, v in rnn.items() if k != "cell"}
    net = instantiate(cfg.model, vocab_size=30).net
    assert type(net.rnn) is module and net.rnn.hidden_size == rnn.hidden_size == 256


def test_trainer_options_set_what_they_say(tmp_path):
    trainers = {t: compose_train([f"trainer={t}"], tmp_path).trainer for t in GROUPS["trainer"]}
    assert trainers["default"].accelerator == "auto" and trainers["cpu"].accelerator == "cpu"
    assert trainers["gpu"].accelerator == "gpu" and trainers["gpu"].precision == "bf16-mixed"
    assert trainers["ddp"].strategy == "ddp" and trainers["ddp"].devices == 2


def test_data_text_reads_the_given_path_and_nothing_of_jaychou(tmp_path, tiny_corpus):
    data = compose_train(["data=text", f"data.path={tiny_corpus}"], tmp_path).data
    assert data.path == str(tiny_corpus) and data.url is None and data.sha256 is None and data.member is None
    jaychou = compose_train([], tmp_path).data
    assert jaychou.path.endswith("jaychou_lyrics.txt.zip") and jaychou.sha256.startswith("3cfedd7d")
    assert OmegaConf.is_missing(compose_train(["data=text"], tmp_path).data, "path")  # required: ??? stays


def test_jaychou_best_changes_the_cell_sizes_and_sequence_length(tmp_path):
    default = compose_train([], tmp_path)
    best = compose_train(["experiment=jaychou_best"], tmp_path)
    # the recipe of the README: a GRU with tied 512-d embeddings, dropout 0.65, word dropout 0.1, seq_len 400, batch 4
    assert (default.model.cell, best.model.cell) == ("rnn", "gru")
    assert best.model.emb_dim == best.model.hidden_size == 512 and best.model.tie_weights
    assert best.model.dropout == best.model.emb_dropout == 0.65 and best.model.word_dropout == 0.1
    assert (best.data.seq_len, best.data.batch_size, best.trainer.max_epochs) == (400, 4, 8)
    assert (default.data.seq_len, default.data.batch_size) == (100, 16)
    net = instantiate(best.model, vocab_size=30).net
    assert type(net.rnn) is nn.GRU and net.head.weight is net.embedding.weight


def test_one_decoding_group_for_generate_evaluate_and_the_callbacks(tmp_path):
    from dataclasses import fields

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from lyricgen.decoding import DecodingOptions

    names = {f.name for f in fields(DecodingOptions)}  # every option, max_length too
    assert set(OmegaConf.load(Path(CONF) / "decoding" / "default.yaml")) == names
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        gen = compose("generate", overrides=["rhyme=AABB", "line_chars=[5,7]"])
        ev = compose("evaluate", overrides=["acrostic='星星'"])
    assert names <= set(gen) and names <= set(ev)
    opts = DecodingOptions.from_mapping(gen).check()
    assert opts.rhyme == "AABB" and opts.line_chars == [5, 7] and opts.form
    assert DecodingOptions.from_mapping(ev).num_samples == 100 and ev.acrostic == "星星"
    cfg = compose_train([], tmp_path)
    form = instantiate(cfg.callbacks.sample_lyrics_form)
    assert form.opts.rhyme == "AABB" and form.opts.line_chars == 7 and form.opts.no_copy == 4
    assert instantiate(cfg.callbacks.lyrics_metrics).opts.num_samples == 100


def test_tokenizer_option_builds_its_tokenizer(tmp_path):
    from lyricgen.data.tokenizer import CharTokenizer, JiebaTokenizer, WordsTokenizer

    built = {t: instantiate(compose_train([f"tokenizer={t}"], tmp_path).data).tokenizer for t in GROUPS["tokenizer"]}
    assert type(built["jieba"]) is JiebaTokenizer and built["jieba"].hmm is True
    assert type(built["char"]) is CharTokenizer and type(built["words"]) is WordsTokenizer


def test_tutorial_experiments_are_the_recipes_as_written(tmp_path):
    tf = compose_train(["experiment=tf_shakespeare"], tmp_path)
    assert tf.data.path.endswith("tinyshakespeare.txt") and tf.data.tokenizer._target_.endswith("CharTokenizer")
    assert (tf.model.cell, tf.model.emb_dim, tf.model.hidden_size, tf.data.seq_len, tf.data.batch_size) == (
        "gru",
        256,
        1024,
        100,
        64,
    )
    assert tf.trainer.max_epochs == 20 and tf.model.dropout == 0 and tf.callbacks.early_stopping is None
    d2l = compose_train(["experiment=d2l_jaychou"], tmp_path)
    assert (
        d2l.model.cell,
        d2l.model.emb_dim,
        d2l.model.hidden_size,
        d2l.model.lr,
        d2l.data.batch_size,
        d2l.data.seq_len,
    ) == ("rnn", 128, 256, 1e-4, 5, 32)
    assert d2l.data.tokenizer._target_.endswith("JiebaTokenizer")
    novel = compose_train(["experiment=novel_char"], tmp_path)
    assert (novel.model.cell, novel.model.emb_dim, novel.model.hidden_size, novel.data.seq_len) == (
        "rnn",
        256,
        256,
        100,
    )
    assert novel.callbacks.sample_lyrics.prompts == ["Once upon a time"]
    best = compose_train(["experiment=shakespeare_char"], tmp_path)
    assert best.data.blank_lines is True and best.data.tokenizer._target_.endswith("CharTokenizer")
    assert best.data.train_on_val is True  # a final run: trained on the first 90%, as nanoGPT's example
