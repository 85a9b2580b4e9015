"""One set of decoding defaults: DecodingOptions' fields write conf/decoding/default.yaml, every script and
callback composes them, and the page, generate.py and the sample callback write the same lyrics for the same
options and seed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lyricgen.decoding import DecodingOptions
from lyricgen.decoding.options import config_yaml
from tests.conftest import CONF, ROOT, best_checkpoint, compose_train, run_script

SAMPLING = {"strategy", "temperature", "top_k", "top_p", "repetition_penalty", "best_of", "max_line_chars"}


def changed(opts: DecodingOptions) -> dict:
    """The options that differ from DecodingOptions' defaults."""
    default = DecodingOptions()
    return {
        f.name: getattr(opts, f.name)
        for f in dataclasses.fields(opts)
        if getattr(opts, f.name) != getattr(default, f.name)
    }


def test_the_yaml_is_written_from_the_dataclass():
    written = (ROOT / "conf" / "decoding" / "default.yaml").read_text(encoding="utf-8")
    assert written == config_yaml(), (
        'conf/decoding/default.yaml differs from DecodingOptions; write it again with python -c "from '
        "lyricgen.decoding.options import config_yaml; print(config_yaml(), end='')\" > conf/decoding/default.yaml"
    )


@pytest.mark.parametrize(
    "script,own", [("generate", {}), ("app", {}), ("evaluate", {"num_samples", "lines", "length"})]
)
def test_every_script_starts_from_the_defaults(script, own):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(script)
    assert set(changed(DecodingOptions.from_mapping(cfg))) == set(own)


def test_the_callbacks_change_what_they_sample_not_how(tmp_path):
    callbacks = compose_train([], tmp_path).callbacks
    for name in ("sample_lyrics", "sample_lyrics_form", "lyrics_metrics"):
        opts = DecodingOptions.from_mapping(callbacks[name].decoding)
        assert not set(changed(opts)) & SAMPLING, name  # lines, length, samples and form only


def test_the_page_generate_py_and_the_callback_write_the_same_lyrics(trained_run, page, tmp_path):
    from lyricgen.model import LyricsLM

    ckpt = best_checkpoint(trained_run)
    model = LyricsLM.load_from_checkpoint(ckpt, map_location="cpu")
    # the tiny model knows its lines by heart: a high temperature makes the seed matter; the rest: the defaults
    hot = ["callbacks.sample_lyrics.decoding.temperature=2.0"]
    callback = instantiate(compose_train(hot, tmp_path).callbacks.sample_lyrics)  # lines 4, length 120, seed 0
    with torch.random.fork_rng(devices=[]):
        from_callback = callback.samples(model)["星星"]
    asked = ["start_word=星星", "lines=4", "length=120", "temperature=2.0", "seed=0"]
    script = run_script("generate", f"ckpt_path={ckpt}", *asked)
    assert script.returncode == 0, script.stderr
    from_page = page.generate("星星", seed="0", lines="4", length="120", temperature=2.0)[0]
    assert from_callback == script.stdout.rstrip("\n") == from_page
    assert from_page != page.generate("星星", seed="1", lines="4", length="120", temperature=2.0)[0]


def test_the_same_form_lyrics_from_the_page_generate_py_and_a_callback(trained_run, page):
    from lyricgen.callbacks import SampleLyrics
    from lyricgen.model import LyricsLM

    ckpt = best_checkpoint(trained_run)
    form = {"rhyme": "AABB", "line_chars": 6, "lines": 4}
    callback = SampleLyrics(prompts=["星星"], decoding=form, seed=5)
    from_callback = callback.samples(LyricsLM.load_from_checkpoint(ckpt, map_location="cpu"))["星星"]
    script = run_script(
        "generate", f"ckpt_path={ckpt}", "start_word=星星", "rhyme=AABB", "line_chars=6", "lines=4", "seed=5"
    )
    assert script.returncode == 0, script.stderr
    from_page = page.generate("星星", seed=5, rhyme="AABB", line_chars="6", lines=4)[0]
    assert from_callback == script.stdout.rstrip("\n") == from_page and len(from_page.split("\n")) == 4
