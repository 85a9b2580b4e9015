"""Serving the page: Gradio's queue, a local address, no share link; `serve` until Ctrl-C."""

from __future__ import annotations

import sys
import time

from lyricgen.app.inputs import to_int
from lyricgen.app.layout import build_page
from lyricgen.app.page import LyricsPage
from lyricgen.errors import LyricgenError


def require_gradio() -> None:
    """Refuse, with the install command, when the optional extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise LyricgenError('the web page needs Gradio, an optional extra: pip install -e ".[app]"')


def check_serving(host: str, port, concurrency, queue_size) -> tuple[str, int, int, int]:
    """The serving settings as (host, port, concurrency, queue_size), or a LyricgenError naming the fix."""
    host = str(host or "").strip()
    if not host:
        raise LyricgenError(
            "host must be an address to listen on, e.g. host=127.0.0.1 (this machine only) or host=0.0.0.0"
        )
    port, concurrency, queue_size = (
        to_int(v, n) for v, n in ((port, "port"), (concurrency, "concurrency"), (queue_size, "queue_size"))
    )
    if not 1 <= port <= 65535:
        raise LyricgenError(f"port must be between 1 and 65535, got {port}")
    if concurrency < 1 or queue_size < 1:
        raise LyricgenError(f"concurrency and queue_size must be >= 1, got {concurrency} and {queue_size}")
    return host, port, concurrency, queue_size


def start(page: LyricsPage, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 2, queue_size: int = 32):
    """Start serving the page in the background; (the Gradio Blocks, its address). Gradio's queue decodes
    `concurrency` requests at once and holds at most `queue_size` waiting; no share link."""
    host, port, concurrency, queue_size = check_serving(host, port, concurrency, queue_size)
    demo = build_page(page)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    try:
        _, url, _ = demo.launch(
            server_name=host, server_port=port, share=False, quiet=True, prevent_thread_lock=True, run_history=False
        )  # no run history page (it offers uploads to a Hugging Face bucket)
    except OSError as e:  # Gradio's "Cannot find empty port in range ..."
        raise LyricgenError(
            f"cannot serve on {host}:{port} ({str(e).split('.')[0]}); pass port=N with a free port"
        ) from None
    return demo, url


def serve(
    page: LyricsPage, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 2, queue_size: int = 32
) -> None:
    """Serve the page until Ctrl-C (see `start`)."""
    demo, url = start(page, host, port, concurrency, queue_size)
    print(f"lyricgen page: {url} (Ctrl-C stops it)", flush=True)
    try:
        while demo.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        demo.close()
