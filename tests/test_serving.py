"""The real page: `scripts/app.py` on a free local port, driven through gradio_client, plain HTTP and, when a
Chromium is installed, a headless browser; bursts of requests, Ctrl-C, and settings refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lyricgen.app.inputs import PARAMETERS
from lyricgen.app.layout import first_values
from lyricgen.app.models import Models
from lyricgen.app.page import LyricsPage
from tests.conftest import (
    BIG,
    CRITIC_TEXT,
    ROOT,
    TINY_LINES,
    assert_aabb,
    assert_user_error,
    best_checkpoint,
    interruptible,
    last_word_class,
    make_runs,
    path_like_names,
    run_script,
)

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
        assert_aabb(text, 5)
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
