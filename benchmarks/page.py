"""The web page's latency: the same lyrics decoded by the library, by the page's function, and requested from
the page served on a free local port (through gradio_client and over plain HTTP)."""

from __future__ import annotations

import socket
import statistics
import time

from benchmarks import Row
from lyricgen.decoding import DecodingOptions


def page_latency(ckpt: str, free: DecodingOptions, form: DecodingOptions, repeats: int) -> list[Row]:
    """A request for 8 lines to the web page (scripts/app.py's page, served here on a free local port) through
    gradio_client, against decoding the same lines with the model loaded and the page function called directly."""
    try:
        import httpx
        from gradio_client import Client
    except ImportError:
        return [("web page request", 'not measured: pip install -e ".[app]"')]
    from lyricgen.app.layout import first_values
    from lyricgen.app.models import Models
    from lyricgen.app.page import LyricsPage
    from lyricgen.app.serving import start

    models = Models(device="cpu")
    models.load(ckpt)
    gen, page = models.current.generator, LyricsPage(models)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = start(page, port=port)
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    http = httpx.Client(timeout=60)
    page_defaults = first_values(page)  # the endpoint's inputs in order, at the values a request leaves out
    rows = []
    try:
        for label, opts in (("8 free lines", free), ("8 lines rhyme=AABB line_chars=7", form)):
            asked = dict(
                start_word="",
                lines=8,
                length="",  # no cap in words: 8 lines, as `opts` decodes them
                temperature=opts.temperature,
                top_p=opts.top_p,
                rhyme=opts.rhyme or "",
                line_chars=str(opts.line_chars or ""),
            )
            calls = {  # the same lyrics four ways: the same options and seeds
                "decoding": lambda r, opts=opts: gen.generate("", seed=r, opts=opts),
                "page function (decoding, annotation, measures)": lambda r, asked=asked: page.generate(**asked, seed=r),
                "request through gradio_client": lambda r, asked=asked: client.predict(
                    **asked, seed=str(r), api_name="/generate"
                ),
                # the same request without gradio_client, which polls for its answer every 50 ms
                "request over HTTP (gradio_api/call/generate, httpx)": lambda r, asked=asked: http_call(
                    http, url, "generate", [{**page_defaults, **asked, "seed": str(r)}[k] for k in page_defaults]
                ),
            }
            spans = {name: [] for name in calls}
            for r in range(repeats + 1):  # the first round warms up
                for name, call in calls.items():
                    begin = time.perf_counter()
                    call(r)
                    if r:
                        spans[name].append(1000 * (time.perf_counter() - begin))
            for name, ms in spans.items():
                rows.append(
                    (
                        f"web page, {label}: {name} (best / median of {repeats})",
                        f"{min(ms):.1f} / {statistics.median(ms):.1f} ms",
                    )
                )
            decoding = statistics.median(spans["decoding"])
            client_over, http_over = (
                statistics.median(ms) - decoding for name, ms in spans.items() if name.startswith("request")
            )
            rows.append(
                (
                    f"web page, {label}: request minus decoding (medians; gradio_client, HTTP)",
                    f"{client_over:.1f} ms, {http_over:.1f} ms",
                )
            )
    finally:
        http.close()
        demo.close()
    return rows


def http_call(http, url: str, api_name: str, data: list):
    """One call of a Gradio endpoint over its HTTP API: POST the inputs, read the answer's event stream."""
    event_id = http.post(f"{url}gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    with http.stream("GET", f"{url}gradio_api/call/{api_name}/{event_id}") as answer:
        text = "".join(answer.iter_text())
    if "event: complete" not in text:
        raise RuntimeError(f"the page answered {text[:300]!r}")
    return text
