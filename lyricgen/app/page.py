"""The page's functions, plain Python on the loaded model (`Models`): write lyrics (`generate`), score pasted
lyrics (`critic`), list the model's tunes and switch to another run. Each raises `LyricgenError` for a mistake
or a request over the page's limits; the page (`lyricgen.app.layout`) shows the message."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from lyricgen.app.inputs import (
    MAX_CRITIC_CHARS,
    MAX_START_WORD,
    at_most,
    check_limits,
    read_options,
    short_fields,
    to_int,
)
from lyricgen.app.models import LoadedModel, Models, model_info
from lyricgen.critic import copied_cell, critique, summary_lines
from lyricgen.data.tokenizer import NEWLINE, SPACE
from lyricgen.decoding import DecodingOptions
from lyricgen.errors import LyricgenError
from lyricgen.evaluation import measures
from lyricgen.metrics import line_class
from lyricgen.prosody import check_rule, count_chars

LINE_COLUMNS = ["sample", "#", "line", "chars", "rhyme"]
MEASURE_COLUMNS = ["measure", "value"]
CRITIC_COLUMNS = ["#", "line", "chars", "rhyme", "ppl", "copied"]


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
        """`defaults`: the page's first values (DecodingOptions' own unless the config changes them; checked
        against the page's limits here)."""
        self.models = models
        self.defaults = check_limits(defaults or DecodingOptions())

    def _model(self) -> LoadedModel:
        if self.models.current is None:
            raise LyricgenError("no model is loaded; pick a run on the Model tab")
        return self.models.current

    def generate(self, start_word: str = "", seed: int | str | None = None, **options) -> tuple[str, list, list]:
        """Write lyrics with the options given by name (those of the Write tab, `lyricgen.app.inputs.WRITE`, as
        the browser sends them; the others at the page's defaults): (the lyrics, samples separated by a blank
        line; a row per line: sample, #, line, chars, rhyme class; the lyric measures as (measure, value) rows,
        the seed used among them). An empty seed draws one."""
        short_fields({"seed": seed})
        start_word = str(start_word or "").strip()
        at_most(len(start_word), MAX_START_WORD, "start word length (characters)")
        seed = random.randrange(2**31) if seed is None or str(seed).strip() == "" else to_int(seed, "seed")
        opts = read_options(options, self.defaults)
        gen = self._model().generator
        samples = gen.generate_tokens(start_word, seed=seed, opts=opts)
        lyrics = "\n\n".join(gen.tokenizer.detokenize(tokens) for tokens in samples)  # as generate.py prints them
        lines = [_line_rows(s, opts.rhyme_rule, gen.tokenizer.join) for s in samples]
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
        at_most(len(text), MAX_CRITIC_CHARS, "critic text length (characters)")
        short_fields({"rhyme_rule": rhyme_rule, "copy_n": copy_n})
        check_rule(rhyme_rule)
        copy_n = to_int(copy_n, "copy_n")
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
        short_fields({"run name": name})
        return model_info(self.models.load_run(str(name or "")))
