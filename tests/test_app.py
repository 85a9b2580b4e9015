"""The web page: its functions on a model trained in the test, then the real `scripts/app.py` on a free local
port driven through gradio_client and, when a Chromium is installed, through a headless browser."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lyricgen.app.inputs import MAX_CRITIC_CHARS, MAX_FIELD_CHARS, PARAMETERS, parse_keywords, parse_line_chars
from lyricgen.app.layout import first_values
from lyricgen.app.models import Models, model_info
from lyricgen.app.page import LyricsPage
from lyricgen.app.serving import check_serving
from lyricgen.checkpoint import find_checkpoint, training_runs
from lyricgen.data.tokenizer import JiebaTokenizer
from lyricgen.errors import LyricgenError
from lyricgen.prosody import count_chars, rhyme_class
from tests.conftest import ROOT, TINY_LINES, RunsCode, assert_user_error, best_checkpoint, interruptible, run_script

# classes by hand: 光 江阳, 伤 江阳, 飞 灰堆, 烁 梭波, 家 发花 (as in test_critic)
CRITIC_TEXT = "我看着月光\n你说你受伤\n\n鸟儿飞\n星星在天上闪烁\n我回家\n"


@pytest.fixture(scope="module")
def page(trained_run) -> LyricsPage:
    models = Models(trained_run.parents[1])  # runs_dir: <base>/outputs, the run is 2026-01-01/00-00-00
    models.load(best_checkpoint(trained_run))
    return LyricsPage(models)


def last_word_class(line: str) -> str | None:
    """The rhyme class of a written line, read back independently: jieba, then the last word."""
    return rhyme_class(JiebaTokenizer().tokenize_line(line)[-1])


def measures_of(table: list[list]) -> dict:
    return dict((name, value) for name, value in table)


# --- the page's functions -------------------------------------------------------------------------


def test_write_annotates_each_line_with_characters_and_rhyme_class(page):
    lyrics, rows, table = page.generate("星星", lines=3, strategy="greedy")
    assert [line.replace(" ", "") for line in lyrics.split("\n")] == TINY_LINES[:3]  # the learnt lines
    assert [r[:2] for r in rows] == [[1, 1], [1, 2], [1, 3]]
    assert [r[3] for r in rows] == [7, 6, 8]
    assert [r[4] for r in rows] == ["梭波", "言前", "发花"]  # 烁, 远, 家
    found = measures_of(table)
    assert found["repeated-line rate"] == 0 and found["distinct-1"] == 1.0
    assert "novelty" not in found and isinstance(found["seed"], int)


def test_write_with_form_meets_it_and_measures_it(page):
    lyrics, rows, table = page.generate(
        "", lines=8, num_samples=2, rhyme="AABB", line_chars="5", seed=0, temperature=1.5
    )
    samples = lyrics.split("\n\n")
    assert len(samples) == 2 and len(rows) == 16
    for text in samples:
        lines = text.split("\n")
        assert len(lines) == 8 and all(count_chars(line) == 5 for line in lines), text
        classes = [last_word_class(line) for line in lines]
        assert (
            classes[0] == classes[1] == classes[4] == classes[5] != classes[2] == classes[3] == classes[6] == classes[7]
        )
    assert [r[4] for r in rows[:8]] == [last_word_class(line) for line in samples[0].split("\n")]
    found = measures_of(table)
    assert found["scheme accuracy"] == 1.0 and found["line-length accuracy"] == 1.0 and found["seed"] == 0


def test_empty_seed_draws_one_that_reproduces_the_lyrics(page):
    lyrics, _, table = page.generate("", lines=4, num_samples=2, temperature=3.0, seed="")
    seed = measures_of(table)["seed"]
    assert page.generate("", lines=4, num_samples=2, temperature=3.0, seed=str(seed))[0] == lyrics


def test_limits_are_exactly_the_limits(page):
    start = "星星在天上闪烁" * 6 + "我爱你到永远" + "星星"  # 50 characters, every word known
    assert len(start) == 50
    assert page.generate(start, lines=1, strategy="greedy")[0].replace(" ", "").startswith(start)
    lyrics, _, _ = page.generate("", lines=64, length="", num_samples=16, strategy="greedy")  # no cap in words
    assert [len(s.split("\n")) for s in lyrics.split("\n\n")] == [64] * 16
    rows, _ = page.critic(("星星在天上闪烁\n" * 2000)[:MAX_CRITIC_CHARS])
    assert len(rows) == 1250


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda p: p.generate("星" * 51), "start word length (characters): 51, over this page's limit of 50"),
        (lambda p: p.generate("", lines=65), "lines: 65, over this page's limit of 64"),
        (lambda p: p.generate("", num_samples=17), "samples: 17, over this page's limit of 16"),
        (
            lambda p: p.critic("我" * (MAX_CRITIC_CHARS + 1)),
            "critic text length (characters): 10001, over this page's limit of 10000",
        ),
        (lambda p: p.generate("", line_chars="31"), "characters per line: 31, over this page's limit of 30"),
        (lambda p: p.generate("", best_of=9, rhyme="AABB"), "best_of: 9, over this page's limit of 8"),
        (lambda p: p.generate("", keywords=",".join(["星星"] * 17)), "keywords: 17, over this page's limit of 16"),
    ],
)
def test_requests_over_the_limits_are_refused_with_a_message(page, call, fragment):
    with pytest.raises(LyricgenError, match="^" + fragment.replace("(", r"\(").replace(")", r"\)") + "$"):
        call(page)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"start_word": "太阳"}, "start_word '太阳' is not in the model's vocabulary"),
        ({"acrostic": "星我月风", "lines": 2}, "acrostic '星我月风' has 4 characters but lines=2"),
        ({"line_chars": "7 or so"}, "characters per line must be a number or numbers separated by commas"),
        ({"rhyme": "A1B2"}, "rhyme=.A1B2. is not a scheme; rhyme takes letters A-Z"),
        ({"rhyme_with": "家"}, "rhyme_with sets the class of the A lines"),
        ({"seed": "one"}, "seed must be a whole number, got 'one'"),
        ({"keywords": "太阳"}, "keyword '太阳' is not in the model's vocabulary"),
    ],
)
def test_mistakes_are_one_line_messages(page, kwargs, fragment):
    with pytest.raises(LyricgenError, match=fragment) as e:
        page.generate(**kwargs)
    assert "\n" not in str(e.value)


def test_critic_gives_the_table_scheme_and_perplexity(page):
    rows, summary = page.critic(CRITIC_TEXT, copy_n=4)
    assert [r[1] for r in rows] == ["我看着月光", "你说你受伤", "鸟儿飞", "星星在天上闪烁", "我回家"]
    assert [r[2] for r in rows] == [5, 5, 3, 7, 3]
    assert [r[3] for r in rows] == ["江阳", "江阳", "灰堆", "梭波", "发花"]
    assert [r[5].startswith("yes") for r in rows] == [False, False, False, True, False]
    assert f"training line 1: {TINY_LINES[0]}" in rows[3][5]  # where: the run's corpus is at hand
    assert rows[3][4] * 3 < min(r[4] for i, r in enumerate(rows) if i != 3)  # the learnt line is far likelier
    assert summary.splitlines()[0] == "scheme: AAXXX" and summary.splitlines()[-1].startswith("perplexity: ")
    for empty in ("", " \n\n "):
        with pytest.raises(LyricgenError, match="the critic box is empty"):
            page.critic(empty)


def test_runs_are_listed_and_picked_by_name_only(trained_run, tmp_path):
    runs_dir = tmp_path / "outputs"
    older, newer = runs_dir / "2026-01-01" / "a", runs_dir / "2026-01-02" / "b"
    shutil.copytree(trained_run, older)
    shutil.copytree(trained_run, newer)
    for ckpt in (older / "checkpoints").glob("*.ckpt"):
        os.utime(ckpt, (time.time() - 3600, time.time() - 3600))
    models = Models(runs_dir)
    assert list(models.runs()) == ["2026-01-02/b", "2026-01-01/a"]  # newest first
    assert training_runs(runs_dir) == [newer, older] and find_checkpoint(runs_dir).parent.parent == newer
    choices = models.run_choices()
    assert [name for _, name in choices] == ["2026-01-02/b", "2026-01-01/a"]
    assert re.fullmatch(r"2026-01-02/b · rnn · val/ppl \d+\.\d\d", choices[0][0]), choices
    results = json.loads((older / "results.json").read_text())  # made a final run's: no validation, test only
    del results["best_val_ppl"]
    (older / "results.json").write_text(json.dumps({**results, "final_ckpt": "final-epoch19.ckpt"}))
    label = models.run_choices()[1][0]
    assert label == f"2026-01-01/a · rnn · final run, test/ppl {results['test_ppl']:.2f}"
    page = LyricsPage(models)
    info = page.switch("2026-01-01/a")
    assert models.current.run == "2026-01-01/a" and models.current.ckpt_path.name.startswith("best-")
    assert "`2026-01-01/a`" in info and "| cell | rnn |" in info and "32 / 64 / 1" in info
    for outside in ("../a", str(older), "2026-01-01", ""):
        with pytest.raises(LyricgenError, match="pick one from the list"):
            page.switch(outside)
    assert models.current.run == "2026-01-01/a"  # a refused switch leaves the model loaded


def test_model_info_reads_the_runs_results(page):
    info = model_info(page.models.current)
    assert re.search(r"\| best val/ppl \| \d+\.\d\d \|", info) and re.search(r"\| test/ppl \| \d+\.\d\d \|", info)
    assert "| vocabulary |" in info and "| n-gram index (no_copy, copies) | yes |" in info


def test_text_fields_and_serving_settings_are_parsed_or_refused():
    assert parse_line_chars(" 5, 7，5 7 ") == [5, 7, 5, 7] and parse_line_chars("") is None
    assert parse_keywords("回忆, 雨、星星  月亮") == ["回忆", "雨", "星星", "月亮"]
    assert check_serving("127.0.0.1", "7860", 2, 32) == ("127.0.0.1", 7860, 2, 32)
    for bad in [
        ("", 7860, 2, 32),
        ("127.0.0.1", "abc", 2, 32),
        ("127.0.0.1", 70000, 2, 32),
        ("127.0.0.1", 7860, 0, 32),
    ]:
        with pytest.raises(LyricgenError):
            check_serving(*bad)


def test_lines_of_a_words_model_read_with_its_spaces():
    from lyricgen.app.page import _line_rows
    from lyricgen.data.tokenizer import NEWLINE, JiebaTokenizer, WordsTokenizer

    tokens = WordsTokenizer().tokenize("Once upon a time, there was\nROMEO: I'll go.")
    rows = _line_rows(tokens, "shisan", WordsTokenizer().join)
    assert [text for text, _, _ in rows] == ["Once upon a time, there was", "ROMEO: I'll go."]
    assert [text for text, _, _ in _line_rows(["星星", "的", NEWLINE, "雨"], "shisan", JiebaTokenizer().join)] == [
        "星星的",
        "雨",
    ]


# --- hostile requests: path-like run names, huge fields, checkpoints built to run code -------------


def make_runs(trained_run: Path, base: Path) -> tuple[Path, Path, dict[str, str]]:
    """A runs folder: the trained run as 2026-01-01/00-00-00 and, under bad/, runs whose best checkpoint is
    broken one way each (older, so that the good run stays the newest). (runs_dir, marker, {bad run: the
    fragment of its message}); the marker file appears if any checkpoint's code ever runs."""
    runs_dir, marker, outside = base / "outputs", base / "code-ran", base / "outside"
    good = runs_dir / "2026-01-01" / "00-00-00"
    shutil.copytree(trained_run, good)
    ckpt = best_checkpoint(good).read_bytes()
    outside.mkdir()
    (outside / "best-x.ckpt").write_bytes(ckpt)

    def best_of(name: str) -> Path:
        (runs_dir / "bad" / name / "checkpoints").mkdir(parents=True)
        return runs_dir / "bad" / name / "checkpoints" / "best-epoch1.ckpt"

    torch.save({"state_dict": RunsCode(marker)}, best_of("runs-code"))
    best_of("runs-code-pickle").write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    best_of("truncated").write_bytes(ckpt[: len(ckpt) // 2])
    folder = best_of("folder")
    (folder.parent / "last.ckpt").write_bytes(ckpt)
    folder.mkdir()
    torch.save({"weights": torch.zeros(3)}, best_of("other-file"))
    (runs_dir / "bad" / "linked").mkdir()
    (runs_dir / "bad" / "linked" / "checkpoints").symlink_to(outside)  # a real checkpoint, outside runs_dir
    old = best_checkpoint(good).stat().st_mtime - 3600
    for path in (runs_dir / "bad").glob("*/checkpoints/*.ckpt"):
        os.utime(path, (old, old))
    fragments = {
        "bad/runs-code": "which lyricgen never unpickles: they could run code",
        "bad/runs-code-pickle": "which lyricgen never unpickles: they could run code",
        "bad/truncated": "it is truncated or not a zip archive",
        "bad/folder": "best-epoch1.ckpt is a folder, not a .ckpt file",
        "bad/other-file": "best-epoch1.ckpt is not a lyricgen checkpoint (no vocabulary or hyperparameters in it)",
        "bad/linked": "is a link to a file outside",
    }
    return runs_dir, marker, fragments


# names a visitor may type instead of picking one from the list; (the name, what its message says)
def path_like_names(outside_ckpt: Path) -> list[tuple[str, str]]:
    refused = "pick one from the list"
    return [
        ("../..", refused),
        ("/etc", refused),
        ("..%2F..", refused),
        ("2026-01-01/../../..", refused),
        (str(outside_ckpt), refused),  # a real checkpoint, by its absolute path
        (str(outside_ckpt.parent), refused),
        ("2026-01-01\x0000-00-00", refused),  # NUL
        ("x" * 100_000, f"run name length (characters): 100000, over this page's limit of {MAX_FIELD_CHARS}"),
    ]


def test_run_names_that_are_paths_and_checkpoints_built_to_run_code_are_refused(trained_run, tmp_path):
    runs_dir, marker, fragments = make_runs(trained_run, tmp_path)
    models = Models(runs_dir)
    page = LyricsPage(models)
    assert set(fragments) < set(models.runs())  # listed: the page finds out only when one is picked
    page.switch("2026-01-01/00-00-00")
    for name, fragment in [*path_like_names(tmp_path / "outside" / "best-x.ckpt"), *fragments.items()]:
        with pytest.raises(LyricgenError) as e:
            page.switch(name)
        assert fragment in str(e.value) and "\n" not in str(e.value) and len(str(e.value)) < 400, (name, e.value)
    assert not marker.exists()  # the code in the checkpoints never ran
    assert models.current.run == "2026-01-01/00-00-00"  # a refused switch leaves the model loaded
    assert page.generate("星星", lines=1, strategy="greedy")[0].replace(" ", "") == TINY_LINES[0]


def test_a_run_config_that_names_other_code_is_never_called(trained_run, tmp_path):
    run, marker = tmp_path / "outputs" / "r", tmp_path / "config-code-ran"
    shutil.copytree(trained_run, run)
    (run / ".hydra" / "config.yaml").write_text(f"data:\n  _target_: builtins.open\n  _args_: ['{marker}', 'w']\n")
    try:
        loaded = Models(tmp_path / "outputs").load_run("r")  # the checkpoint is good: loaded, without training text
        assert loaded.training_lines is None
    finally:
        assert not marker.exists()


BIG = "星" * 100_000
OVER_FIELD = f"over this page's limit of {MAX_FIELD_CHARS}"


OWN_LIMITS = {
    "start_word": "start word length (characters): 100000, over this page's limit of 50",
    "cipai": "tune name length (characters): 100000, over this page's limit of 50",
    "acrostic": "acrostic length (characters): 100000, over this page's limit of 64",
}


@pytest.mark.parametrize("field", PARAMETERS[1:])  # every input of the Write tab but the start word
def test_a_field_of_100000_characters_is_refused_in_a_short_message(page, field):
    limit = OWN_LIMITS.get(field, f"{field} length (characters): 100000, {OVER_FIELD}")
    with pytest.raises(LyricgenError) as e:
        page.generate(**{"start_word": "", field: BIG})
    assert str(e.value) == limit  # not the 100,000 characters repeated back


def test_critic_fields_of_100000_characters_are_refused_in_a_short_message(page):
    for kwargs, message in [
        ({"text": BIG}, f"critic text length (characters): 100000, over this page's limit of {MAX_CRITIC_CHARS}"),
        ({"text": "我看着月光", "rhyme_rule": BIG}, f"rhyme_rule length (characters): 100000, {OVER_FIELD}"),
        ({"text": "我看着月光", "copy_n": "9" * 100_000}, f"copy_n length (characters): 100000, {OVER_FIELD}"),
    ]:
        with pytest.raises(LyricgenError) as e:
            page.critic(**kwargs)
        assert str(e.value) == message


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seed": 2**70}, "seed must be a whole number between -2**63 and 2**63 - 1, got 1180591620717411303424"),
        ({"seed": "9" * 400}, "seed must be a whole number between -2**63 and 2**63 - 1, got '" + "9" * 400 + "'"),
        ({"lines": "1e308"}, "lines must be a whole number between -2**63 and 2**63 - 1, got '1e308'"),
        ({"lines": 10**400}, "lines must be a whole number between -2**63 and 2**63 - 1, got 1" + "0" * 400),
        ({"temperature": 10**400}, "temperature must be a number, got 1" + "0" * 400),
        ({"lines": "nan"}, "lines must be a whole number, got 'nan'"),
        ({"lines": [1, 2]}, "lines must be a whole number, got [1, 2]"),
        ({"top_p": 5}, "top_p=5.0 is out of range; top_p takes a number in (0, 1]; e.g. top_p=1.0"),
        ({"num_samples": -1}, "num_samples=-1 is out of range; num_samples takes an integer >= 1; e.g. num_samples=1"),
    ],
)
def test_numbers_out_of_range_are_refused_with_a_message(page, kwargs, message):
    with pytest.raises(LyricgenError) as e:
        page.generate("", **kwargs)
    assert str(e.value) == message


def test_a_long_seed_is_kept_to_the_last_digit(page):
    seed = 2**62 + 1  # a float would make it 2**62
    lyrics, _, table = page.generate("", lines=4, temperature=3.0, seed=str(seed))
    assert measures_of(table)["seed"] == seed
    assert page.generate("", lines=4, temperature=3.0, seed=seed)[0] == lyrics


# --- the real page: scripts/app.py on a free port -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_runs(trained_run, tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """The server's runs folder (`make_runs`): (runs_dir, marker, {bad run: its message's fragment})."""
    return make_runs(trained_run, tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def server(served_runs, tmp_path_factory):
    """scripts/app.py serving the tiny model on a free local port: (url, process, stderr file)."""
    pytest.importorskip("gradio", reason="the page needs the app extra: pip install -e '.[app]'")
    logs = tmp_path_factory.mktemp("app")
    out, err = logs / "stdout.txt", logs / "stderr.txt"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "app.py"),
        f"runs_dir={served_runs[0]}",
        f"port={free_port()}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=o, stderr=e, text=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 180
    while "lyricgen page: " not in out.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    line = next((ln for ln in out.read_text().splitlines() if ln.startswith("lyricgen page: ")), None)
    assert line is not None, (out.read_text(), err.read_text()[-3000:])
    yield line.split()[2], proc, err
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False, analytics_enabled=False, download_files=False)


@pytest.mark.slow
def test_page_serves_on_localhost_with_the_loaded_checkpoint(server, served_runs):
    url, proc, err = server
    assert url.startswith("http://127.0.0.1:")
    assert f"checkpoint: {best_checkpoint(served_runs[0] / '2026-01-01' / '00-00-00')}" in err.read_text()


@pytest.mark.slow
def test_api_generate_writes_the_form_asked_for(client):
    lyrics, lines, measures = client.predict(
        start_word="",
        lines=8,
        num_samples=2,
        rhyme="AABB",
        line_chars="5",
        seed="0",
        temperature=1.5,
        api_name="/generate",
    )
    samples = lyrics.split("\n\n")
    assert len(samples) == 2
    for text in samples:
        rows = text.split("\n")
        assert len(rows) == 8 and all(count_chars(r) == 5 for r in rows), text
        classes = [last_word_class(r) for r in rows]
        assert (
            classes[0] == classes[1] == classes[4] == classes[5] != classes[2] == classes[3] == classes[6] == classes[7]
        )
    assert lines["headers"] == ["sample", "#", "line", "chars", "rhyme"] and len(lines["data"]) == 16
    assert [row[4] for row in lines["data"][:8]] == [last_word_class(r) for r in samples[0].split("\n")]
    assert dict(measures["data"])["scheme accuracy"] == 1.0


@pytest.mark.slow
def test_api_critic_scores_pasted_lyrics(client):
    table, summary = client.predict(text=CRITIC_TEXT, api_name="/critic")
    assert [row[3] for row in table["data"]] == ["江阳", "江阳", "灰堆", "梭波", "发花"]
    assert summary.startswith("scheme: AAXXX")


@pytest.mark.slow
def test_api_bad_input_is_a_message_and_the_server_keeps_serving(client, server):
    from gradio_client.exceptions import AppError

    for kwargs, api, fragment in [
        ({"start_word": "太阳"}, "/generate", "start_word '太阳' is not in the model's vocabulary"),
        ({"start_word": "", "lines": 65}, "/generate", "lines: 65, over this page's limit of 64"),
        (
            {"start_word": "星" * 51},
            "/generate",
            "start word length \\(characters\\): 51, over this page's limit of 50",
        ),
        ({"start_word": "", "lines": "many"}, "/generate", "lines must be a whole number, got 'many'"),
        ({"start_word": "", "acrostic": "星我月风", "lines": 2}, "/generate", "acrostic '星我月风' has 4 characters"),
        ({"text": "  "}, "/critic", "the critic box is empty"),
        ({"name": str(ROOT / "README.md")}, "/load_run", "pick one from the list"),  # runs by name, never a path
        (
            {"text": "我" * 10_001},
            "/critic",
            "critic text length \\(characters\\): 10001, over this page's limit of 10000",
        ),
    ]:
        with pytest.raises(AppError, match=fragment):
            client.predict(**kwargs, api_name=api)
    assert "`2026-01-01/00-00-00`" in client.predict(name="2026-01-01/00-00-00", api_name="/load_run")
    lyrics, _, _ = client.predict(start_word="星星", lines=2, strategy="greedy", api_name="/generate")
    assert lyrics.replace(" ", "").split("\n") == TINY_LINES[:2]  # still serving, same model
    assert "Traceback" not in server[2].read_text()


def generate_data(**values) -> list:
    """The values of the `generate` endpoint in its order (the page's first values, then `values`), as a plain
    HTTP request sends them."""
    first = first_values(LyricsPage(Models()))
    return [values.get(name, first[name]) for name in PARAMETERS]


def call_api(url: str, api: str, data: list) -> tuple[str, str]:
    """One request over Gradio's HTTP API: ("complete", the answer), ("error", the message) or ("refused", the
    HTTP status and body)."""
    import httpx

    url = url.rstrip("/")
    with httpx.Client(timeout=300) as http:
        posted = http.post(f"{url}/gradio_api/call/{api}", json={"data": data})
        if posted.status_code != 200:
            return "refused", f"{posted.status_code} {posted.text}"
        event = None
        with http.stream("GET", f"{url}/gradio_api/call/{api}/{posted.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event in ("complete", "error"):
                    answer = json.loads(line.removeprefix("data: "))
                    return event, answer if event == "complete" else answer["error"]
    return "no answer", ""


def burst(url: str, n: int, data: list) -> list[tuple[str, str]]:
    """`n` requests to `generate` at once, from `n` threads; their outcomes."""
    outcomes: list = [None] * n

    def one(i: int) -> None:
        outcomes[i] = call_api(url, "generate", data)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    return outcomes


@pytest.mark.slow
def test_api_refuses_path_names_huge_fields_and_checkpoints_built_to_run_code(client, server, served_runs):
    from gradio_client.exceptions import AppError

    runs_dir, marker, fragments = served_runs
    outside = runs_dir.parent / "outside" / "best-x.ckpt"
    for name, fragment in [*path_like_names(outside), *fragments.items()]:
        with pytest.raises(AppError) as e:
            client.predict(name=name, api_name="/load_run")
        assert fragment in str(e.value) and len(str(e.value)) < 400, (name, str(e.value)[:400])
    assert not marker.exists()  # no checkpoint's code ran in the server
    for field in ["start_word", "seed", "rhyme", "line_chars", "keywords", "strategy", "lines", "temperature"]:
        with pytest.raises(AppError, match="length \\(characters\\): 100000, over this page's limit of ") as e:
            client.predict(**{"start_word": "", field: BIG}, api_name="/generate")
        assert len(str(e.value)) < 100
    with pytest.raises(AppError, match="critic text length \\(characters\\): 100000"):
        client.predict(text=BIG, api_name="/critic")
    assert "`2026-01-01/00-00-00`" in client.predict(name="2026-01-01/00-00-00", api_name="/load_run")
    lyrics, _, _ = client.predict(start_word="星星", lines=2, strategy="greedy", api_name="/generate")
    assert lyrics.replace(" ", "").split("\n") == TINY_LINES[:2]  # still serving, the good model
    assert "Traceback" not in server[2].read_text()


@pytest.mark.slow
def test_api_answers_30_requests_at_once_and_keeps_serving(server):
    url = server[0]
    outcomes = burst(url, 30, generate_data(start_word="星星", lines=8, strategy="greedy"))
    assert [kind for kind, _ in outcomes] == ["complete"] * 30  # 30 fit in the queue (queue_size=32)
    assert all(answer[0].replace(" ", "").split("\n")[:4] == TINY_LINES for _, answer in outcomes)
    kind, message = call_api(url, "generate", generate_data(start_word="太阳"))
    assert kind == "error" and message.startswith("start_word '太阳' is not in the model's vocabulary")
    kind, answer = call_api(url, "generate", generate_data(start_word="星星", lines=2, strategy="greedy"))
    assert kind == "complete" and answer[0].replace(" ", "").split("\n") == TINY_LINES[:2]


@pytest.mark.slow
def test_a_burst_over_the_queue_is_refused_with_a_message_and_the_page_keeps_serving(page):
    pytest.importorskip("gradio", reason="the page needs the app extra: pip install -e '.[app]'")
    from lyricgen.app.serving import start

    demo, url = start(page, port=free_port(), concurrency=1, queue_size=2)
    try:  # requests of about a second each: 30 at once overflow a queue of 2
        outcomes = burst(url, 30, generate_data(lines=64, num_samples=16, rhyme="AABB", line_chars="7", seed="1"))
        kinds = [kind for kind, _ in outcomes]
        refused = [text for kind, text in outcomes if kind == "refused"]
        assert set(kinds) == {"complete", "refused"} and kinds.count("complete") >= 2, kinds
        assert all(text.startswith("503 ") and "Queue is full. Max size is 2" in text for text in refused), refused
        kind, answer = call_api(url, "generate", generate_data(start_word="星星", lines=2, strategy="greedy"))
        assert kind == "complete" and answer[0].replace(" ", "").split("\n") == TINY_LINES[:2]
    finally:
        demo.close()


@pytest.mark.slow
def test_browser_writes_lyrics_when_the_button_is_pressed(server):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            tab = browser.new_page()
            tab.goto(server[0])
            tab.get_by_label("start word or phrase", exact=False).fill("星星")
            tab.get_by_label("lines", exact=True).fill("8")  # empty at first: up to `length` words
            tab.get_by_role("button", name="Write").click()
            tab.wait_for_function("() => document.querySelector('#lyrics textarea').value.length > 0", timeout=60_000)
            lines = tab.locator("#lyrics textarea").input_value().split("\n")
            assert len(lines) == 8 and lines[0].startswith("星星")
            assert tab.get_by_text("梭波").first.is_visible() or tab.get_by_text("言前").first.is_visible()
            tab.get_by_label("start word or phrase", exact=False).fill("太阳")
            tab.get_by_role("button", name="Write").click()
            tab.get_by_text("is not in the model's vocabulary").first.wait_for(
                timeout=30_000
            )  # the message, on the page
        finally:
            browser.close()


@pytest.mark.slow
def test_ctrl_c_ends_the_server_cleanly(server):  # last: it stops the module's server
    url, proc, err = server
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err.read_text() and err.read_text().strip().endswith("stopped")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["ckpt_path=/nonexistent/x.ckpt"], "checkpoint /nonexistent/x.ckpt does not exist"),
        (["runs_dir=/nonexistent"], "no training run found under /nonexistent/"),
        (["port=abc"], "port must be a whole number, got 'abc'"),
        (["lines=100", "ckpt_path=/nonexistent/x.ckpt"], "lines: 100, over this page's limit of 64"),  # before loading
        (["temperature=0"], "temperature=0 is out of range; temperature takes a number > 0"),
    ],
)
def test_script_refuses_bad_settings_in_one_line(args, fragment):
    pytest.importorskip("gradio", reason="the page needs the app extra: pip install -e '.[app]'")
    result = run_script("app", *args, timeout=120)
    assert_user_error(result, fragment)
