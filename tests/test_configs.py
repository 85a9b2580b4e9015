"""Every option of every config group composes, and the objects it names can be built."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from tests.conftest import CONF, compose_train

GROUPS = {
    g: sorted(p.stem for p in (Path(CONF) / g).glob("*.yaml"))
    for g in ("data", "model", "trainer", "callbacks", "logger", "experiment")
}


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_option_composes(group, option, tmp_path, tiny_corpus):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "text":
        overrides.append(f"data.path={tiny_corpus}")
    cfg = compose_train(overrides, tmp_path)
    assert cfg[group if group != "experiment" else "model"] is not None
    model = instantiate(cfg.model, vocab_size=30)
    assert model.hparams.vocab_size == 30
    if group == "trainer" and option not in ("gpu",):
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert trainer.max_epochs == cfg.trainer.max_epochs
    for name, cb in (cfg.callbacks or {}).items():
        assert instantiate(cb) is not None, name
    for name, lg in (cfg.logger or {}).items():
        assert instantiate(lg) is not None, name


def test_groups_have_the_documented_options():
    assert {"rnn", "gru", "lstm"} <= set(GROUPS["model"])
    assert {"default", "cpu", "gpu", "ddp"} <= set(GROUPS["trainer"])
    assert {"jaychou", "text"} <= set(GROUPS["data"])


def test_one_decoding_group_for_generate_evaluate_and_the_callbacks(tmp_path):
    from dataclasses import fields

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from lyricgen.decoding import DecodingOptions

    names = {f.name for f in fields(DecodingOptions)} - {"max_length"}
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
