"""The page's layout in Gradio: tabs Write, Critic and Model, and the API endpoints `generate`, `critic` and
`load_run`. The Write tab's option widgets are made from the fields of `DecodingOptions` (`lyricgen.app.inputs`):
each shows its field's default (or the config's value) and help, and a widget's kind follows the field's type
and range. Gradio is imported only here and in `lyricgen.app.serving`, so the rest runs without it.

Events take the browser's values as sent (preprocess=False): the page functions check every value and say
what is wrong in one line, where Gradio's own checks (a slider's bounds, a list's choices) would also print a
traceback on the server's console for a visitor's mistake.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable

from lyricgen.app.inputs import FIELDS, HINTS, MAX_CRITIC_CHARS, MAX_START_WORD, PARAMETERS, WRITE, Input, shown
from lyricgen.app.models import model_info
from lyricgen.app.page import CRITIC_COLUMNS, LINE_COLUMNS, MEASURE_COLUMNS, LyricsPage
from lyricgen.errors import LyricgenError
from lyricgen.prosody import RHYME_RULES

SCHEMES = ["AABB", "ABAB", "AAAA", "XAXA", "ABBA", "AABA"]  # offered in the list; any other can be typed
SEED_LABEL = "seed (empty: a new one each time)"


def _on_page(fn):
    """Run a page function; a LyricgenError becomes a message on the page (no traceback, server unharmed)."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LyricgenError as e:
            raise gr.Error(str(e), print_exception=False) from None

    return wrapper


def first_values(page: LyricsPage) -> dict[str, object]:
    """Each input of the `generate` endpoint with its first value, as the page shows it (the page's defaults)."""
    first = {"start_word": "", "seed": "", **{i.name: shown(getattr(page.defaults, i.name)) for i in WRITE}}
    return {name: first[name] for name in PARAMETERS}


def endpoint(page: LyricsPage) -> Callable:
    """`page.generate` as the `generate` endpoint: the browser's values in the order of `PARAMETERS`, under a
    signature that names them (gradio_client and the HTTP API call them by these names and defaults)."""

    def generate(*values):
        return page.generate(**dict(zip(PARAMETERS, values)))

    first = first_values(page)
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    generate.__signature__ = inspect.Signature([inspect.Parameter(n, kind, default=first[n]) for n in PARAMETERS])
    return _on_page(generate)


def widget(gr, i: Input, value, page: LyricsPage):
    """The widget of a decoding option: its field's default and help, its kind from the field's type and range."""
    meta = FIELDS[i.name].metadata
    common = {"value": value, "label": i.said, "info": meta["help"]}
    if i.name == "rhyme":
        return gr.Dropdown([("none", ""), *[(s, s) for s in SCHEMES]], allow_custom_value=True, **common)
    if i.name == "cipai":
        return gr.Dropdown(page.tune_choices(), allow_custom_value=True, elem_id="cipai", **common)
    if meta["choices"]:
        return gr.Radio(list(meta["choices"]), **common)
    kinds = typing.get_args(HINTS[i.name]) or (HINTS[i.name],)
    if type(None) in kinds or list in [typing.get_origin(k) for k in kinds]:
        return gr.Textbox(**common)  # optional numbers, lists and words: empty is null
    if float in kinds:  # a slider over the field's range (and a little past the first value)
        low = meta["ge"] if meta["ge"] is not None else 0.05
        high = meta["le"] if meta["le"] is not None else max(2.0, value)
        return gr.Slider(min(low, value), high, step=0.01 if high <= 1 else 0.05, **common)
    if i.limit is not None:
        return gr.Slider(meta["ge"], i.limit, step=1, **common)
    return gr.Number(precision=0, minimum=meta["ge"], **common)


def _write_tab(gr, page: LyricsPage) -> dict:
    """The Write tab; its input widgets by parameter name (and `cipai`, which a model switch changes)."""
    first = first_values(page)
    inputs = {}
    with gr.Row():
        inputs["start_word"] = gr.Textbox(
            label=f"start word or phrase (at most {MAX_START_WORD} characters; empty: a new line)",
            max_length=MAX_START_WORD,
        )
        for i in (i for i in WRITE if i.group == "top"):
            inputs[i.name] = widget(gr, i, first[i.name], page)
    for group in ("sampling", "form"):
        with gr.Accordion(group, open=True), gr.Row():
            for i in (i for i in WRITE if i.group == group):
                inputs[i.name] = widget(gr, i, first[i.name], page)
            if group == "sampling":  # a Textbox, not a Number: a Number cannot be left empty
                inputs["seed"] = gr.Textbox(value="", label=SEED_LABEL)
    write = gr.Button("Write", variant="primary")
    lyrics = gr.Textbox(label="lyrics", lines=10, interactive=False, elem_id="lyrics")
    line_table = gr.Dataframe(
        headers=LINE_COLUMNS, label="lines: characters and rhyme class (十三辙)", interactive=False, wrap=True
    )
    measure_table = gr.Dataframe(headers=MEASURE_COLUMNS, label="lyric measures", interactive=False)
    write.click(
        endpoint(page),
        inputs=[inputs[name] for name in PARAMETERS],
        outputs=[lyrics, line_table, measure_table],
        api_name="generate",
        preprocess=False,
    )
    return inputs


def _critic_tab(gr, page: LyricsPage) -> None:
    text = gr.Textbox(
        label=f"lyrics to score, one line per line (at most {MAX_CRITIC_CHARS:,} characters)",
        lines=10,
        max_length=MAX_CRITIC_CHARS,
    )
    with gr.Row():
        critic_rule = gr.Radio(list(RHYME_RULES), value="shisan", label="rhyme rule")
        copy_n = gr.Slider(2, 8, value=4, step=1, label="a copy is a run of this many training words")
    score = gr.Button("Score", variant="primary")
    critic_table = gr.Dataframe(headers=CRITIC_COLUMNS, label="lines", interactive=False, wrap=True)
    summary = gr.Textbox(label="scheme, rhyme rate, perplexity", lines=4, interactive=False)
    score.click(
        _on_page(page.critic),
        inputs=[text, critic_rule, copy_n],
        outputs=[critic_table, summary],
        api_name="critic",
        preprocess=False,
    )


def _model_tab(gr, page: LyricsPage, cipai) -> tuple:
    info = gr.Markdown(label="loaded model")
    run = gr.Dropdown([], label=f"training runs under {page.models.runs_dir}/")
    with gr.Row():
        load = gr.Button("Load this run", variant="primary")
        refresh = gr.Button("Refresh the list")
    load.click(
        _on_page(page.switch),
        inputs=[run],
        outputs=[info],
        api_name="load_run",
        concurrency_limit=1,
        preprocess=False,
    ).then(  # the new model's tunes
        lambda: gr.Dropdown(choices=page.tune_choices(), value=""), outputs=[cipai], api_visibility="private"
    )
    refresh.click(lambda: gr.Dropdown(choices=page.models.run_choices()), outputs=[run], api_visibility="private")
    return info, run


def build_page(page: LyricsPage):
    """The Gradio Blocks of the page (tabs Write, Critic, Model; API endpoints `generate` and `critic`)."""
    import gradio as gr

    with gr.Blocks(title="lyricgen", analytics_enabled=False) as demo:
        gr.Markdown(
            "# lyricgen\nLyrics from a word-level language model, with rhyme, line lengths, acrostic and a critic."
        )
        with gr.Tab("Write"):
            cipai = _write_tab(gr, page)["cipai"]
        with gr.Tab("Critic"):
            _critic_tab(gr, page)
        with gr.Tab("Model"):
            info, run = _model_tab(gr, page, cipai)

        def shown_model():  # on every page load: the model loaded now, which a switch may have changed
            loaded = page.models.current
            return (
                model_info(loaded) if loaded else "no model loaded",
                gr.Dropdown(choices=page.models.run_choices(), value=loaded.run if loaded else None),
                gr.Dropdown(choices=page.tune_choices()),
            )

        demo.load(shown_model, outputs=[info, run, cipai], api_visibility="private")
    return demo
