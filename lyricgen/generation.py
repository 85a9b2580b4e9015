"""Writing lyrics with a trained model: one implementation for `scripts/generate.py`, the TensorBoard
callbacks, evaluation and Python users.

    from lyricgen.generation import LyricsGenerator
    gen = LyricsGenerator.from_checkpoint("outputs/.../checkpoints/last.ckpt")
    print(gen.generate("星星", lines=4, temperature=0.8, seed=0)[0])
    print(gen.generate("", rhyme="AABB", line_chars=7, acrostic="星星之火", no_copy=4, seed=0)[0])

Free decoding goes token by token (`lyricgen.decoding.sampling`); any form option (rhyme, line_chars,
acrostic, keywords, no_copy) switches to line-by-line form decoding (`lyricgen.decoding.form`). Only
torch, numpy and, for rhymes, pypinyin are imported (no Lightning; no jieba unless a phrase has to be
segmented), so that the generation command starts fast.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from lyricgen.checkpoint import build_net, load_checkpoint, read_extras, read_templates
from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.source import title_line
from lyricgen.data.tokenizer import NEWLINE, SPACE, Tokenizer, from_settings
from lyricgen.data.vocab import Vocab
from lyricgen.decoding.form import FormDecoder
from lyricgen.decoding.options import DecodingOptions
from lyricgen.decoding.sampling import decode
from lyricgen.decoding.tables import WordTables
from lyricgen.decoding.templates import Template, templates_from_dict
from lyricgen.errors import LyricgenError
from lyricgen.memory import check_decoding_fits
from lyricgen.rnnlm import RNNLM


def _similar_words(word: str, vocab: Vocab, k: int = 5) -> list[str]:
    """Vocabulary words that share the most characters with `word`, frequent words first."""
    chars = set(word)
    scored = [
        (-len(chars & set(t)), i, t)
        for i, t in enumerate(vocab.itos)
        if i and t not in (NEWLINE, SPACE) and chars & set(t)
    ]
    return [t for _, _, t in sorted(scored)[:k]]


class LyricsGenerator:
    """A trained network with its vocabulary, tokeniser settings and n-gram index, ready to write lyrics."""

    def __init__(
        self,
        net: RNNLM,
        vocab: Vocab,
        tokenizer_settings: dict | None = None,
        ngrams: NgramIndex | None = None,
        templates: dict | None = None,
    ) -> None:
        self.net = net
        self.vocab = vocab
        self.tokenizer_settings = tokenizer_settings or {}
        self.ngrams = ngrams
        self.templates: dict[str, Template] = templates_from_dict(templates)  # tunes of a model trained on ci
        self._tokenizer: Tokenizer | None = None
        self._tables: dict[str, WordTables] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> LyricsGenerator:
        ckpt = load_checkpoint(path)
        vocab, tokenizer, ngrams = read_extras(ckpt)
        return cls(build_net(ckpt).to(device).eval(), vocab, tokenizer, ngrams, read_templates(ckpt))

    @classmethod
    def from_model(cls, model) -> LyricsGenerator:
        """The generator of a `LyricsLM` (e.g. one being trained): its network and what travels with it."""
        return cls(model.net, model.vocab, model.tokenizer_settings, model.ngrams, model.templates)

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = from_settings(self.tokenizer_settings)
        return self._tokenizer

    def word_tables(self, rule: str) -> WordTables:
        """Per-word lengths, first characters and rhyme classes for a rhyme rule (made once per rule)."""
        if rule not in self._tables:
            self._tables[rule] = WordTables(self.vocab, rule, next(self.net.parameters()).device)
        return self._tables[rule]

    def _unknown(self, what: str, word: str, why: str = "") -> LyricgenError:
        similar = _similar_words(word, self.vocab)
        hint = f"; similar words it knows: {', '.join(similar)}" if similar else f"; try another {what}"
        return LyricgenError(f"{what} {word!r} is not in the model's vocabulary{f' ({why})' if why else ''}{hint}")

    def tunes(self) -> list[Template]:
        """The tunes this model knows, the most common first."""
        return sorted(self.templates.values(), key=lambda t: (-t.count, t.tune))

    def tune_list(self) -> str:
        """`cipai=list`: a line a tune, the most common first: its name, its training ci, the share of them in
        its template's shape, and the shape (clause lengths, rhyme letters, punctuation; see `Template`)."""
        if not self.templates:
            self.template("list")  # refused: no templates
        return "\n".join(f"{t.tune}\t{t.count} ci\t{t.share:.0%} in this shape\t{t.shape_text()}" for t in self.tunes())

    def template(self, cipai: str) -> Template:
        """The template of a tune; an unknown one is refused with the nearest known names."""
        if not self.templates:
            raise LyricgenError(
                f"cipai={cipai}: this model has no tune templates (it was not trained on ci); train one with "
                "python scripts/train.py experiment=songci_char, or leave out cipai"
            )
        if cipai in self.templates:
            return self.templates[cipai]
        names = [t.tune for t in self.tunes()]
        near = difflib.get_close_matches(cipai, names, n=5, cutoff=0.3)
        near += [n for n in names if set(n) & set(cipai) and n not in near][: 5 - len(near)]
        hint = f"nearest known tunes: {', '.join(near)}" if near else "cipai=list prints the known tunes"
        raise LyricgenError(f"cipai={cipai!r} is not a tune this model knows; {hint}")

    def written(self, tokens: list[str]) -> list[str]:
        """The tokens as the model writes them: with char fallback, a word outside its vocabulary as its
        characters (`Tokenizer.written`); else as they are."""
        return self.tokenizer.written(tokens, self.vocab)

    def encode_prompt(self, start_word: str) -> list[int]:
        """Ids of the prompt; a word the model cannot write (with char fallback: a character it has never seen)
        is refused, with similar known words."""
        if not start_word:
            return []
        if start_word in self.vocab:  # a known word needs no segmentation (and no jieba import)
            return [self.vocab.stoi[start_word]]
        words = self.tokenizer.tokenize(start_word.replace("\\n", "\n"))
        for word in words:
            unknown = [t for t in self.written([word]) if t not in self.vocab]
            if unknown and unknown[0] != word:  # a word spelt out, one of its characters never seen
                raise self._unknown("start_word", word, f"it has never seen the character {unknown[0]!r}")
            if unknown:
                raise self._unknown("start_word", word)
        return self.vocab.encode(self.written(words))

    def check_form(self, opts: DecodingOptions) -> None:
        """Refuse form options for a tokeniser without them, and keywords and a rhyme_with that the model
        does not know."""
        if not self.tokenizer.supports_form:
            raise LyricgenError(
                f"the lyric-form options (rhyme, line_chars, acrostic, keywords, no_copy) work with the jieba and char "
                f"tokenisers; this model was trained with tokenizer={self.tokenizer.name}: leave them out"
            )
        for word in opts.keyword_list():
            if word not in self.vocab:
                raise self._unknown("keyword", word)
        if opts.rhyme_with and opts.rhyme_with not in self.vocab:
            raise self._unknown("rhyme_with", opts.rhyme_with)

    def generate_tokens(self, start_word: str = "", seed: int | None = None, **options) -> list[list[str]]:
        """Like `generate`, but each sample as its list of words (prompt included)."""
        opts = options.pop("opts", None) or DecodingOptions(**options)
        opts.check()
        if opts.form:
            self.check_form(opts)
        template = self.template(opts.cipai) if opts.cipai else None
        prompt = self.encode_prompt(start_word)
        if template is not None:  # a ci begins with its title line, as every ci of the corpus does
            title = self.written(self.tokenizer.tokenize(title_line(template.tune))) + [NEWLINE]
            prompt = self.vocab.encode(title) + prompt  # (a rare character of a title is <unk>, as in training)
        device = next(self.net.parameters()).device
        budget = None if opts.form else (opts.length if opts.length is not None else opts.max_length)
        check_decoding_fits(self.net.settings, opts.num_samples, budget, opts.best_of if opts.form else 1, device)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
        if opts.form:
            tables = self.word_tables(opts.rhyme_rule)
            decoder = FormDecoder(self.net, self.vocab, tables, opts, self.ngrams, generator, template)
            samples = decoder.decode(prompt)
        else:
            stoi = self.vocab.stoi
            exempt = tuple(stoi[t] for t in (NEWLINE, SPACE) if t in stoi)
            samples = decode(
                self.net,
                prompt,
                opts,
                newline_id=stoi.get(NEWLINE, 0),
                unk_id=self.vocab.unk_id,
                no_penalty_ids=exempt,
                generator=generator,
            )
        prompt_tokens = self.vocab.decode(prompt)
        return [prompt_tokens + self.vocab.decode(ids) for ids in samples]

    def generate(self, start_word: str = "", seed: int | None = None, **options) -> list[str]:
        """Write `num_samples` lyrics beginning with `start_word`; each is text with line breaks.

        Options are the fields of `DecodingOptions` (or `opts=DecodingOptions(...)`); `seed` makes
        sampling reproducible.
        """
        return [self.tokenizer.detokenize(tokens) for tokens in self.generate_tokens(start_word, seed, **options)]
