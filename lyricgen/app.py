"""The web page: `python scripts/app.py`, three tabs on one loaded model, built with Gradio.

- **Write**: every decoding and form option; the lyrics, each line with its characters and rhyme class,
  and the lyric measures of what was written (`LyricsPage.generate`, API name `generate`).
- **Critic**: lyrics pasted in, the critic's table and summary (`LyricsPage.critic`, API name `critic`).
- **Model**: the loaded checkpoint and the training runs under `runs_dir` to switch to, picked by name.

The page functions are plain Python (`LyricsPage`) and raise `LyricgenError` for a mistake or a request
over the limits; `build_page` wraps them so that the message appears on the page (`gr.Error`) and the
server keeps serving. Gradio is imported only where the page is built, so the rest runs without it.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lyricgen.checkpoint import best_checkpoint_of, run_dir_of, training_runs
from lyricgen.critic import copied_cell, critique, summary_lines, training_lines_of_run
from lyricgen.data.tokenizer import NEWLINE, SPACE
from lyricgen.decoding import DecodingOptions
from lyricgen.errors import LyricgenError
from lyricgen.evaluation import measures
from lyricgen.generation import LyricsGenerator
from lyricgen.metrics import line_class
from lyricgen.prosody import RHYME_RULES, check_rule, count_chars

# What one request may ask for, so that one visitor cannot exhaust the machine.
MAX_START_WORD = 50  # characters
MAX_LINES = 64
MAX_SAMPLES = 16
MAX_CRITIC_CHARS = 10_000
MAX_LINE_CHARS = 30  # characters per line (line_chars and max_line_chars): the cost of a form line grows with it
MAX_BEST_OF = 8  # candidates per line: form decoding decodes samples x best_of rows at once
MAX_KEYWORDS = 16
MAX_FIELD_CHARS = 500  # any other field (a number, the scheme, keywords, a run's name), refused before it is read

SCHEMES = ["AABB", "ABAB", "AAAA", "XAXA", "ABBA", "AABA"]  # offered in the list; any other can be typed
LINE_COLUMNS = ["sample", "#", "line", "chars", "rhyme"]
MEASURE_COLUMNS = ["measure", "value"]
CRITIC_COLUMNS = ["#", "line", "chars", "rhyme", "ppl", "copied"]


@dataclass
class LoadedModel:
    """A checkpoint ready to write with, and what the page shows about it."""

    generator: LyricsGenerator
    ckpt_path: Path
    run: str | None  # its run's name under runs_dir; None for a checkpoint outside it
    training_lines: list[list[str]] | None  # the run's training text, when at hand (the critic's "where")
    results: dict  # the run's results.json ({} if there is none or it cannot be read)


class Models:
    """The model every request writes with: loaded once and shared read-only; a switch replaces it whole
    (requests under way finish with the model they started with)."""

    def __init__(self, runs_dir: str | Path = "outputs", device: str = "cpu") -> None:
        self.runs_dir = Path(runs_dir)
        self.device = device
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None

    def runs(self) -> dict[str, Path]:
        """The training runs under runs_dir by name (their path relative to it), newest first."""
        return {run.relative_to(self.runs_dir).as_posix(): run for run in training_runs(self.runs_dir)}

    def load(self, ckpt_path: str | Path) -> LoadedModel:
        """Load a checkpoint and make it the current model."""
        ckpt_path = Path(ckpt_path)
        generator = LyricsGenerator.from_checkpoint(ckpt_path, device=self.device)
        generator.word_tables("shisan")  # warm up here, not in the first request: rhyme tables, jieba
        generator.tokenizer.tokenize_line("星星")
        run_dir = run_dir_of(ckpt_path)
        names = {path.resolve(): name for name, path in self.runs().items()}
        loaded = LoadedModel(
            generator,
            ckpt_path,
            names.get(run_dir),
            training_lines_of_run(ckpt_path),
            _read_json(run_dir / "results.json"),
        )
        with self._lock:
            self.current = loaded
        return loaded

    def load_run(self, name: str) -> LoadedModel:
        """Switch to the best checkpoint of a run picked by name from `runs()` (never a path from outside); a
        run whose checkpoint is a link to a file outside runs_dir is refused too."""
        runs = self.runs()
        if name not in runs:
            raise LyricgenError(f"no training run {name!r} under {self.runs_dir}/; pick one from the list (refresh it)")
        ckpt_path = best_checkpoint_of(runs[name])
        if not ckpt_path.resolve().is_relative_to(self.runs_dir.resolve()):
            raise LyricgenError(
                f"run {name!r}: its checkpoint {ckpt_path} is a link to a file outside {self.runs_dir}/, which the "
                "page never loads; copy the run into it, or start the page with ckpt_path=PATH"
            )
        return self.load(ckpt_path)

    def run_choices(self) -> list[tuple[str, str]]:
        """(label, name) of each run for the page's list: its name, cell and best val/ppl (test/ppl for a final
        run, which has no validation)."""
        choices = []
        for name, run in self.runs().items():
            results = _read_json(run / "results.json")
            val, test = results.get("best_val_ppl"), results.get("test_ppl")
            final = "final_ckpt" in results and test is not None
            figure = f"val/ppl {val:.2f}" if val else f"final run, test/ppl {test:.2f}" if final else "no results.json"
            label = " · ".join([name, results.get("model", "?"), figure])
            choices.append((label, name))
        return choices


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_info(loaded: LoadedModel) -> str:
    """Markdown: which checkpoint is loaded, its sizes and its run's val/test perplexity."""
    net, gen, r = loaded.generator.net, loaded.generator, loaded.results

    def fig(key: str) -> str:
        return f"{r[key]:.2f}" if isinstance(r.get(key), (int, float)) else "–"

    rows = [
        ("run", f"`{loaded.run}`" if loaded.run else "– (a checkpoint outside the runs directory)"),
        ("checkpoint", f"`{loaded.ckpt_path}`"),
        ("cell", net.cell),
        ("embedding / hidden / layers", f"{net.embedding.embedding_dim} / {net.hidden_size} / {net.num_layers}"),
        ("vocabulary", f"{len(gen.vocab):,} words"),
        ("parameters", f"{sum(p.numel() for p in net.parameters()):,}"),
        ("best val/ppl", "– (a final run: trained on train + val)" if "final_ckpt" in r else fig("best_val_ppl")),
        ("test/ppl", fig("test_ppl")),
        ("n-gram index (no_copy, copies)", "yes" if gen.ngrams is not None else "no: retrain for no_copy"),
        ("training text (where a copy is from)", "at hand" if loaded.training_lines is not None else "not found"),
    ]
    return "\n".join(["| loaded model | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


def _int(value, name: str) -> int:
    """A whole number from the browser (an int, a float such as 8.0, or text); exact for digits (a long seed
    keeps every digit) and within 64 bits, what torch's generator takes as a seed."""
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        try:
            real = float(value)
        except (TypeError, ValueError, OverflowError):
            raise LyricgenError(f"{name} must be a whole number, got {value!r}") from None
        if not real.is_integer():  # also nan and inf
            raise LyricgenError(f"{name} must be a whole number, got {value!r}")
        number = int(real)
    if not -(2**63) <= number < 2**63:
        raise LyricgenError(f"{name} must be a whole number between -2**63 and 2**63 - 1, got {value!r}")
    return number


def _float(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise LyricgenError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise LyricgenError(f"{name} must be a finite number, got {value!r}")
    return number


def _at_most(value: int, limit: int, what: str) -> int:
    if value > limit:
        raise LyricgenError(f"{what}: {value}, over this page's limit of {limit}")
    return value


def _short_fields(fields: dict[str, object], limit: int = MAX_FIELD_CHARS) -> None:
    """Refuse a field longer than `limit` characters before anything parses it, so that no message repeats
    100,000 characters back to the browser."""
    for name, value in fields.items():
        _at_most(len(str(value)) if value is not None else 0, limit, f"{name} length (characters)")


def parse_line_chars(text: str) -> list[int] | None:
    """`7` or `5,7,5,7` (commas or spaces) -> [7] or [5, 7, 5, 7]; empty -> None (free line lengths)."""
    parts = [p for p in re.split(r"[\s,，、]+", str(text or "").strip()) if p]
    if not parts:
        return None
    if not all(p.isdigit() for p in parts):
        raise LyricgenError(
            f"characters per line must be a number or numbers separated by commas, e.g. 7 or 5,7,5,7; got {text!r}"
        )
    chars = [int(p) for p in parts]
    _at_most(len(chars), MAX_LINES, "characters per line (numbers in the list)")
    _at_most(max(chars), MAX_LINE_CHARS, "characters per line")
    return chars


def parse_keywords(text: str) -> list[str]:
    """Words separated by commas or spaces (also ， and 、)."""
    words = [w for w in re.split(r"[\s,，、]+", str(text or "").strip()) if w]
    _at_most(len(words), MAX_KEYWORDS, "keywords")
    return words


def _line_rows(tokens: list[str], rule: str, join: Callable[[list[str]], str]) -> list[tuple[str, int, str]]:
    """(text, characters, rhyme class) of each line of a sample; the class is the 十三辙 name, with the
    class under `rule` beside it where that differs. `join` is the model's tokeniser's: it makes a line's
    text from its tokens (a `words` model puts spaces between words)."""
    rows, line = [], []
    for t in [*tokens, NEWLINE]:
        if t != NEWLINE:
            line.append(t)
            continue
        text = join(line).strip()
        if text:
            words = [w for w in line if w != SPACE]
            shisan = line_class(words, "shisan")
            rhyme = shisan or "–"
            other = line_class(words, rule) if rule != "shisan" else shisan
            if other != shisan:
                rhyme += f" ({rule}: {other or '–'})"
            rows.append((text, count_chars(text), rhyme))
        line = []
    return rows


def _shown(value: float) -> float | str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 3)


class LyricsPage:
    """The page's functions, on the current model of `models`; each raises LyricgenError for a mistake."""

    def __init__(self, models: Models, defaults: DecodingOptions | None = None) -> None:
        """`defaults`: the page's first values (checked against the page's limits here)."""
        self.models = models
        self.defaults = d = defaults or DecodingOptions(temperature=0.8, top_p=0.95)
        for value, limit, what in [
            (d.lines or 0, MAX_LINES, "lines"),
            (d.num_samples, MAX_SAMPLES, "samples"),
            (d.best_of, MAX_BEST_OF, "best_of"),
            (d.max_line_chars, MAX_LINE_CHARS, "max_line_chars"),
            (max(d.line_chars_list(), default=0), MAX_LINE_CHARS, "characters per line"),
        ]:
            _at_most(value, limit, what)

    def _model(self) -> LoadedModel:
        if self.models.current is None:
            raise LyricgenError("no model is loaded; pick a run on the Model tab")
        return self.models.current

    def generate(
        self,
        start_word: str = "",
        lines: int = 8,
        num_samples: int = 1,
        strategy: str = "sample",
        temperature: float = 0.8,
        top_k: int = 0,
        top_p: float = 0.95,
        repetition_penalty: float = 1.0,
        seed: int | str | None = None,
        rhyme: str = "",
        rhyme_rule: str = "shisan",
        rhyme_with: str = "",
        line_chars: str = "",
        acrostic: str = "",
        keywords: str = "",
        no_copy: int = 0,
        best_of: int = 6,
        max_line_chars: int = 20,
        cipai: str = "",
    ) -> tuple[str, list[list], list[list]]:
        """Write lyrics: (the lyrics, samples separated by a blank line; a row per line: sample, #, line,
        chars, rhyme class; the lyric measures as (measure, value) rows, the seed used among them). With a
        tune (`cipai`), a whole ci in its shape: `lines` and the line-form options then do not apply."""
        _short_fields(  # start word, tune and acrostic: their own, shorter limits below
            {
                "lines": lines,
                "num_samples": num_samples,
                "strategy": strategy,
                "temperature": temperature,
                "top_k": top_k,
                "top_p": top_p,
                "repetition_penalty": repetition_penalty,
                "seed": seed,
                "rhyme": rhyme,
                "rhyme_rule": rhyme_rule,
                "rhyme_with": rhyme_with,
                "line_chars": line_chars,
                "keywords": keywords,
                "no_copy": no_copy,
                "best_of": best_of,
                "max_line_chars": max_line_chars,
            }
        )
        start_word = str(start_word or "").strip()
        _at_most(len(start_word), MAX_START_WORD, "start word length (characters)")
        seed = random.randrange(2**31) if seed is None or str(seed).strip() == "" else _int(seed, "seed")
        acrostic = str(acrostic or "").strip() or None
        cipai = str(cipai or "").strip() or None
        _at_most(len(cipai or ""), MAX_START_WORD, "tune name length (characters)")
        if cipai:  # the tune sets the clauses, their lengths and rhymes
            rhyme, line_chars = "", ""
        if acrostic:
            _at_most(len(acrostic), MAX_LINES, "acrostic length (characters)")
        opts = DecodingOptions(
            strategy=str(strategy),
            temperature=_float(temperature, "temperature"),
            top_k=_int(top_k, "top_k"),
            top_p=_float(top_p, "top_p"),
            repetition_penalty=_float(repetition_penalty, "repetition_penalty"),
            length=None,
            lines=None if cipai else _at_most(_int(lines, "lines"), MAX_LINES, "lines"),
            num_samples=_at_most(_int(num_samples, "samples"), MAX_SAMPLES, "samples"),
            rhyme=str(rhyme or "").strip().upper() or None,
            rhyme_rule=str(rhyme_rule),
            rhyme_with=str(rhyme_with or "").strip() or None,
            line_chars=parse_line_chars(line_chars),
            acrostic=acrostic,
            keywords=parse_keywords(keywords),
            no_copy=_int(no_copy, "no_copy"),
            best_of=_at_most(_int(best_of, "best_of"), MAX_BEST_OF, "best_of"),
            max_line_chars=_at_most(_int(max_line_chars, "max_line_chars"), MAX_LINE_CHARS, "max_line_chars"),
            cipai=cipai,
        ).check()
        if opts.rhyme:
            _at_most(len(opts.rhyme), MAX_LINES, "rhyme scheme length (letters)")
        gen = self._model().generator
        samples = gen.generate_tokens(start_word, seed=seed, opts=opts)
        lines = [_line_rows(s, opts.rhyme_rule, gen.tokenizer.join) for s in samples]
        lyrics = "\n\n".join("\n".join(text for text, _, _ in rows) for rows in lines)
        rows = [
            [k, i, text, chars, rhyme] for k, s in enumerate(lines, 1) for i, (text, chars, rhyme) in enumerate(s, 1)
        ]
        found = measures(gen, samples, [], opts)
        found.pop("novelty")  # needs the training text's lines as written; the copy measures say it here
        table = [[name, _shown(value)] for name, value in found.items()] + [["seed", seed]]
        return lyrics, rows, table

    def critic(self, text: str, rhyme_rule: str = "shisan", copy_n: int = 4) -> tuple[list[list], str]:
        """Score pasted lyrics: (a row per line: #, line, chars, rhyme class, ppl, copied; the summary:
        scheme, rhyme rate, unknown words, perplexity)."""
        text = str(text or "")
        if not text.strip():
            raise LyricgenError("the critic box is empty; paste lyrics into it, one line per line")
        _at_most(len(text), MAX_CRITIC_CHARS, "critic text length (characters)")
        _short_fields({"rhyme_rule": rhyme_rule, "copy_n": copy_n})
        check_rule(rhyme_rule)
        copy_n = _int(copy_n, "copy_n")
        if not 2 <= copy_n <= 8:
            raise LyricgenError(f"copy_n must be between 2 and 8 words, got {copy_n}")
        loaded = self._model()
        report = critique(loaded.generator, text, rhyme_rule, copy_n, loaded.training_lines)
        has_index = loaded.generator.ngrams is not None or loaded.training_lines is not None
        rows = [
            [i, s.text, s.chars, s.rhyme or "–", round(s.ppl, 1), copied_cell(s, copy_n, has_index)]
            for i, s in enumerate(report.lines, 1)
        ]
        return rows, "\n".join(summary_lines(report, has_index))

    def tune_choices(self) -> list[tuple[str, str]]:
        """(label, tune) of the tunes (词牌) of the current model, the most common first, after a "none"; only
        "none" for a model not trained on ci."""
        loaded = self.models.current
        tunes = loaded.generator.tunes() if loaded else []
        return [("none", ""), *[(f"{t.tune} · {t.count} ci · {t.shape_text()}", t.tune) for t in tunes]]

    def switch(self, name: str) -> str:
        """Load the best checkpoint of the run `name` (from the list); the new model's info."""
        _short_fields({"run name": name})
        return model_info(self.models.load_run(str(name or "")))


def require_gradio() -> None:
    """Refuse, with the install command, when the optional extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise LyricgenError('the web page needs Gradio, an optional extra: pip install -e ".[app]"')


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


def build_page(page: LyricsPage):
    """The Gradio Blocks of the page (tabs Write, Critic, Model; API endpoints `generate` and `critic`)."""
    import gradio as gr

    d = page.defaults
    # Events take the browser's values as sent (preprocess=False): the page functions check every value and
    # say what is wrong in one line, where Gradio's own checks (a slider's bounds, a list's choices) would
    # also print a traceback on the server's console for a visitor's mistake.
    with gr.Blocks(title="lyricgen", analytics_enabled=False) as demo:
        gr.Markdown(
            "# lyricgen\nLyrics from a word-level language model, with rhyme, line lengths, acrostic and a critic."
        )
        with gr.Tab("Write"):
            with gr.Row():
                start_word = gr.Textbox(
                    label=f"start word or phrase (at most {MAX_START_WORD} characters; empty: a new line)",
                    max_length=MAX_START_WORD,
                )
                lines = gr.Slider(1, MAX_LINES, value=d.lines or 8, step=1, label="lines")
                num_samples = gr.Slider(1, MAX_SAMPLES, value=d.num_samples, step=1, label="samples")
            with gr.Accordion("sampling", open=True):
                with gr.Row():
                    strategy = gr.Radio(["sample", "greedy"], value=d.strategy, label="strategy")
                    temperature = gr.Slider(
                        0.05, max(2.0, d.temperature), value=d.temperature, step=0.05, label="temperature"
                    )
                    top_k = gr.Number(value=d.top_k, precision=0, minimum=0, label="top-k (0: off)")
                    top_p = gr.Slider(min(0.05, d.top_p), 1.0, value=d.top_p, step=0.01, label="top-p")
                    repetition_penalty = gr.Slider(
                        1.0,
                        max(2.0, d.repetition_penalty),
                        value=d.repetition_penalty,
                        step=0.05,
                        label="repetition penalty (1: off)",
                    )
                    # a Textbox, not a Number: a Number cannot be left empty
                    seed = gr.Textbox(value="", label="seed (empty: a new one each time)")
            with gr.Accordion("form", open=True):
                with gr.Row():
                    rhyme = gr.Dropdown(
                        [("none", ""), *[(s, s) for s in SCHEMES]],
                        value=d.rhyme or "",
                        allow_custom_value=True,
                        label="rhyme scheme (X: free line; type your own)",
                    )
                    rhyme_rule = gr.Radio(list(RHYME_RULES), value=d.rhyme_rule, label="rhyme rule")
                    rhyme_with = gr.Textbox(value=d.rhyme_with or "", label="A lines rhyme with (a word)")
                    line_chars = gr.Textbox(
                        value=",".join(map(str, d.line_chars_list())),
                        label="characters per line (7 or 5,7,5,7; empty: free)",
                    )
                with gr.Row():
                    acrostic = gr.Textbox(value=d.acrostic or "", label="acrostic (藏头: one character per line)")
                    keywords = gr.Textbox(value=",".join(d.keyword_list()), label="keywords (separated by commas)")
                    no_copy = gr.Dropdown(
                        [("off", 0), *[(str(n), n) for n in range(2, 9)]],
                        value=d.no_copy,
                        label="no copy: never a run of n training words",
                    )
                    best_of = gr.Slider(1, MAX_BEST_OF, value=d.best_of, step=1, label="candidates per line")
                    max_line_chars = gr.Slider(
                        1, MAX_LINE_CHARS, value=d.max_line_chars, step=1, label="longest line when free"
                    )
                with gr.Row():
                    cipai = gr.Dropdown(
                        page.tune_choices(),
                        value="",
                        allow_custom_value=True,
                        label="tune (词牌): a whole ci in its shape, for a model trained on ci (data=songci)",
                        elem_id="cipai",
                    )
            write = gr.Button("Write", variant="primary")
            lyrics = gr.Textbox(label="lyrics", lines=10, interactive=False, elem_id="lyrics")
            line_table = gr.Dataframe(
                headers=LINE_COLUMNS, label="lines: characters and rhyme class (十三辙)", interactive=False, wrap=True
            )
            measure_table = gr.Dataframe(headers=MEASURE_COLUMNS, label="lyric measures", interactive=False)
            write.click(
                _on_page(page.generate),
                inputs=[
                    start_word,
                    lines,
                    num_samples,
                    strategy,
                    temperature,
                    top_k,
                    top_p,
                    repetition_penalty,
                    seed,
                    rhyme,
                    rhyme_rule,
                    rhyme_with,
                    line_chars,
                    acrostic,
                    keywords,
                    no_copy,
                    best_of,
                    max_line_chars,
                    cipai,
                ],
                outputs=[lyrics, line_table, measure_table],
                api_name="generate",
                preprocess=False,
            )
        with gr.Tab("Critic"):
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
        with gr.Tab("Model"):
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
            refresh.click(
                lambda: gr.Dropdown(choices=page.models.run_choices()), outputs=[run], api_visibility="private"
            )

        def shown_model():  # on every page load: the model loaded now, which a switch may have changed
            loaded = page.models.current
            return (
                model_info(loaded) if loaded else "no model loaded",
                gr.Dropdown(choices=page.models.run_choices(), value=loaded.run if loaded else None),
                gr.Dropdown(choices=page.tune_choices()),
            )

        demo.load(shown_model, outputs=[info, run, cipai], api_visibility="private")
    return demo


def check_serving(host: str, port, concurrency, queue_size) -> tuple[str, int, int, int]:
    """The serving settings as (host, port, concurrency, queue_size), or a LyricgenError naming the fix."""
    host = str(host or "").strip()
    if not host:
        raise LyricgenError(
            "host must be an address to listen on, e.g. host=127.0.0.1 (this machine only) or host=0.0.0.0"
        )
    port, concurrency, queue_size = _int(port, "port"), _int(concurrency, "concurrency"), _int(queue_size, "queue_size")
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
