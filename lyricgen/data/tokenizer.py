"""Tokenisers, line by line (`lyricgen.data.corpus` runs them over a corpus and caches the result).

Four tokenisers, chosen with the `tokenizer` config group (`conf/tokenizer/`):
- `jieba` (`JiebaTokenizer`): Chinese words. Inside a line, any run of whitespace (ASCII spaces, tabs,
  full-width U+3000 spaces) is one phrase break and becomes a single space token " "; whitespace at the
  ends of a line is dropped.
- `char` (`CharTokenizer`): every character is a token, spaces included, exactly as written.
- `words` (`WordsTokenizer`): for languages written with spaces: words (with inner apostrophes and
  hyphens: "I'll", "well-known") and punctuation marks are tokens, spaces are not; `detokenize` puts
  the spaces back where English puts them ("Once upon a time," not "Once upon a time ,").
- `sentencepiece` (`SentencePieceTokenizer`): the pieces of a unigram sentencepiece model learnt from the
  training split alone, with byte fallback (no text is ever `<unk>`); the model travels in the checkpoint.

Each line ends with the newline token "\\n", so that generated text keeps its line structure. The
tokeniser's `settings` travel in the checkpoint; `from_settings` rebuilds it for generation.

`char_fallback` (jieba and char, on by default): the vocabulary keeps the characters of the training split
(those seen `data.char_min_freq` times) besides its words, and a word outside the vocabulary is written as its
characters (`Vocab.open_tokens`), so that `<unk>` is left only for the rarest characters. Off, a word outside
the vocabulary is `<unk>` (lyricgen before 0.3, and checkpoints made then).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lyricgen.data.vocab import Vocab

log = logging.getLogger(__name__)

NEWLINE = "\n"
SPACE = " "


class Tokenizer:
    """A line-by-line tokeniser: `tokenize_line` and `detokenize` are what each kind defines."""

    name = "?"
    #: the lyric-form options (rhyme, line_chars, acrostic) read a token's characters as written text
    supports_form = True
    #: a vocabulary smaller than this (besides <unk>) is a degenerate set-up, refused by the data module
    min_vocab = 10
    #: the text of tokens is their concatenation, so its length is the sum of theirs (not for `words`)
    additive_length = True
    #: a word outside the vocabulary is written as its characters (see the module's docstring)
    char_fallback = False

    @property
    def settings(self) -> dict:
        return {"name": self.name}

    @property
    def cache_settings(self) -> dict:
        """The settings the tokens depend on (the token cache's key): not `char_fallback`, which only changes
        how they become ids."""
        return {k: v for k, v in self.settings.items() if k != "char_fallback"}

    @property
    def needs_training(self) -> bool:
        """Whether the tokeniser is learnt from the training split (`fit`) before it can tokenise."""
        return False

    def fit(self, lines: list[str]) -> None:
        """Learn the tokeniser from the training split's lines (only for those that need it)."""

    def fixed_tokens(self) -> list[str] | None:
        """The tokens of a tokeniser whose vocabulary is its own (sentencepiece's pieces), else None: the
        vocabulary is then made from the training split's counts."""
        return None

    def written(self, tokens: list[str], vocab: Vocab) -> list[str]:
        """The tokens as a model with `vocab` reads and writes them: with char fallback, a word outside the
        vocabulary as its characters (`Vocab.open_tokens`); else as they are."""
        return vocab.open_tokens(tokens) if self.char_fallback else tokens

    def load(self) -> None:
        """Load what tokenising needs (jieba's dictionary), once per process, before the first line."""

    def tokenize_line(self, line: str) -> list[str]:
        raise NotImplementedError

    def tokenize(self, text: str) -> list[str]:
        """Tokens of a text of several lines; line breaks inside it become newline tokens."""
        tokens: list[str] = []
        for i, line in enumerate(text.split("\n")):
            if i:
                tokens.append(NEWLINE)
            tokens.extend(self.tokenize_line(line))
        return tokens

    def join(self, tokens: list[str]) -> str:
        """The text the tokens stand for, newline tokens as line breaks."""
        return "".join(tokens)

    def detokenize(self, tokens: list[str]) -> str:
        """Text of the tokens, with no line break at either end."""
        return self.join(tokens).strip("\n")

    def text_length(self, tokens: list[str]) -> int:
        """Characters of the text the tokens stand for (a line break counts one): the bpc denominator."""
        return len(self.join(tokens))


class JiebaTokenizer(Tokenizer):
    """Segments Chinese text into words with jieba; `hmm` is jieba's HMM switch for unseen words;
    `char_fallback`: a word outside the vocabulary is written as its characters."""

    name = "jieba"

    def __init__(self, hmm: bool = True, char_fallback: bool = True) -> None:
        self.hmm = hmm
        self.char_fallback = char_fallback
        self._jieba = None

    @property
    def settings(self) -> dict:
        import jieba

        version = getattr(jieba, "__version__", "?")
        return {"name": self.name, "hmm": self.hmm, "char_fallback": self.char_fallback, "jieba_version": version}

    def load(self) -> None:
        if self._jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not progress the user needs
            jieba.initialize()
            self._jieba = jieba

    def _cut(self, text: str) -> list[str]:
        if self._jieba is None:
            self.load()
        return self._jieba.lcut(text, HMM=self.hmm)

    def tokenize_line(self, line: str) -> list[str]:
        """Words of one line, phrase breaks as " ", without the trailing newline token."""
        tokens: list[str] = []
        for i, phrase in enumerate(line.split()):
            if i:
                tokens.append(SPACE)
            tokens.extend(self._cut(phrase))
        return tokens


class CharTokenizer(Tokenizer):
    """Every character a token, spaces included (a line is its characters, exactly as written); `char_fallback`:
    the vocabulary keeps the training split's characters seen `data.char_min_freq` times (else those seen
    `data.min_freq` times)."""

    name = "char"
    min_vocab = 2  # characters are few by nature (the "abcde" toy has 6), but one alone is not a language

    def __init__(self, char_fallback: bool = True) -> None:
        self.char_fallback = char_fallback

    @property
    def settings(self) -> dict:
        return {"name": self.name, "char_fallback": self.char_fallback}

    def tokenize_line(self, line: str) -> list[str]:
        return list(line)


# a word (inner apostrophes and hyphens; a final apostrophe when a space follows: o' the), a dash, a mark
_WORD = re.compile(r"\w+(?:['’-]\w+)*(?:['’](?=\s|$))?|-{2,}|[^\w\s]")
_NO_SPACE_BEFORE = {*",.;:!?)]}%…", "--"}
_NO_SPACE_AFTER = {*"([{$", "--"}
_CLOSES_QUOTE = set(".!?,;:")  # a lone apostrophe after these closes a quote; elsewhere it opens a word ('tis)


class WordsTokenizer(Tokenizer):
    """Words and punctuation marks of text written with spaces; spaces are not tokens.

    `lowercase` folds case (a smaller vocabulary, text generated in lower case).
    """

    name = "words"
    supports_form = False
    additive_length = False  # spaces are put back between tokens

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    @property
    def settings(self) -> dict:
        return {"name": self.name, "lowercase": self.lowercase}

    def tokenize_line(self, line: str) -> list[str]:
        return _WORD.findall(line.lower() if self.lowercase else line)

    def join(self, tokens: list[str]) -> str:
        lines, out, prev = [], [], ""
        open_quote = False  # a straight double quote is open in this line
        opens = False  # the previous token is an apostrophe that opens a word
        for tok in tokens:
            if tok == NEWLINE:
                lines.append("".join(out))
                out, prev, open_quote = [], "", False
                continue
            glue = not out or tok in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER
            if tok == '"':
                glue = glue or open_quote  # a closing quote sticks to the word before it
                open_quote = not open_quote
            elif prev == '"' and open_quote:
                glue = True  # the word after an opening quote
            elif tok == "'" and prev in _CLOSES_QUOTE:
                glue = True  # a closing quote after a mark: friends,'
            elif prev == "'" and opens:
                glue = True  # 'tis, 'em: an apostrophe that opens a word
            opens = tok == "'" and prev not in _CLOSES_QUOTE
            out.append(tok if glue else " " + tok)
            prev = tok
        lines.append("".join(out))
        return "\n".join(lines)


class SentencePieceTokenizer(Tokenizer):
    """Pieces of a unigram sentencepiece model trained on the training split alone (`fit`), with byte fallback:
    a character the model lacks is written as its UTF-8 bytes (`<0xE5>` ...), so no text is ever `<unk>`. Its
    pieces are the vocabulary, and the model (`model`, the serialized proto) travels in the checkpoint.

    `vocab_size`: the pieces to learn (fewer on a small corpus: the limit is soft); `character_coverage`: the
    share of the training characters that are pieces of their own (the rarest others: bytes)."""

    name = "sentencepiece"
    supports_form = False  # a piece is not a word: the form options are refused (`LyricsGenerator.check_form`)
    additive_length = False  # "▁" pieces are spaces, bytes are parts of a character

    def __init__(self, vocab_size: int = 8000, character_coverage: float = 0.9995, model: bytes | None = None):
        self.vocab_size = vocab_size
        self.character_coverage = character_coverage
        self.model = model
        self._sp = None

    @property
    def settings(self) -> dict:
        settings = {"name": self.name, "vocab_size": self.vocab_size, "character_coverage": self.character_coverage}
        return {**settings, "model": self.model} if self.model is not None else settings

    @property
    def cache_settings(self) -> dict:
        settings = {k: v for k, v in self.settings.items() if k != "model"}
        return {**settings, "model_sha256": hashlib.sha256(self.model or b"").hexdigest()}

    @property
    def needs_training(self) -> bool:
        return self.model is None

    def fit(self, lines: list[str]) -> None:
        """Train the model on `lines` (the training split's), once."""
        import sentencepiece as spm

        proto = io.BytesIO()
        try:
            self._train(spm, lines, proto)
        except RuntimeError as e:  # sentencepiece's own refusal (e.g. fewer pieces than characters and bytes)
            from lyricgen.errors import LyricgenError

            reason = str(e).split("]")[-1].strip() or str(e)
            raise LyricgenError(
                f"sentencepiece could not learn data.tokenizer.vocab_size={self.vocab_size} pieces from "
                f"{len(lines):,} training lines: {reason}"
            ) from None
        self.model, self._sp = proto.getvalue(), None

    def _train(self, spm, lines: list[str], proto: io.BytesIO) -> None:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=proto,
            vocab_size=self.vocab_size,
            model_type="unigram",
            character_coverage=self.character_coverage,
            byte_fallback=True,
            hard_vocab_limit=False,  # a small corpus gets the pieces it has
            normalization_rule_name="identity",  # the text as written: no NFKC, spaces kept
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            split_digits=True,
            minloglevel=2,
            num_threads=1,
        )

    def load(self) -> None:
        if self._sp is None:
            import sentencepiece as spm

            if self.model is None:
                raise RuntimeError("the sentencepiece model is not trained yet (fit it on the training split)")
            self._sp = spm.SentencePieceProcessor(model_proto=self.model)

    def fixed_tokens(self) -> list[str]:
        """Every piece of the model but its control pieces and its <unk> (which byte fallback never writes)."""
        self.load()
        sp = self._sp
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]

    def tokenize_line(self, line: str) -> list[str]:
        self.load()
        return self._sp.encode(line, out_type=str)

    def join(self, tokens: list[str]) -> str:
        self.load()
        lines, line = [], []
        for tok in tokens:
            if tok == NEWLINE:
                lines.append(self._sp.decode_pieces(line))
                line = []
            else:
                line.append(tok)
        lines.append(self._sp.decode_pieces(line))
        return "\n".join(lines)


TOKENIZERS = {cls.name: cls for cls in (JiebaTokenizer, CharTokenizer, WordsTokenizer, SentencePieceTokenizer)}


def from_settings(settings: dict | None) -> Tokenizer:
    """The tokeniser a checkpoint was trained with (its `settings`); jieba for checkpoints made before
    tokenisers had names."""
    settings = {"char_fallback": False, **(settings or {})}  # checkpoints made before 0.3 spelt nothing out
    name = settings.pop("name", "jieba")
    if name not in TOKENIZERS:
        from lyricgen.errors import LyricgenError

        raise LyricgenError(
            f"the checkpoint was made with tokenizer {name!r}, which this lyricgen does not know "
            f"({', '.join(TOKENIZERS)}); update lyricgen"
        )
    cls = TOKENIZERS[name]
    params = inspect.signature(cls).parameters  # the settings it is built from (not e.g. jieba_version)
    return cls(**{k: v for k, v in settings.items() if k in params})
