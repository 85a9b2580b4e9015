"""The LightningDataModule: corpus source -> tokens (cached) -> split -> vocabulary -> datasets."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from lyricgen.data.corpus import TokenizedCorpus, load_or_tokenize
from lyricgen.data.datasets import ChunkDataset, StreamDataset, pad_collate
from lyricgen.data.encoding import Speller, SplitChars, TypeIds
from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.source import FORMATS, Song, corpus_digest, ensure_file, ensure_files, read_songs
from lyricgen.data.splits import bounded_stop, split_lines, training_lines
from lyricgen.data.tokenizer import NEWLINE, SPACE, JiebaTokenizer, Tokenizer
from lyricgen.data.vocab import UNK, Vocab
from lyricgen.errors import LyricgenError
from lyricgen.files import write_atomically
from lyricgen.schema import check, option

log = logging.getLogger(__name__)

MAX_UNK_SHARE = 0.5  # so is a validation split with more than this share of <unk> tokens


@dataclass
class DataOptions:
    """The options of `LyricsDataModule` (the `data` config group), with their types and ranges."""

    path: str | Path = option(example="my_lyrics.txt")
    format: str = option("text", choices=FORMATS)
    url: str | None = option(None)
    sha256: str | None = option(None)
    files: Mapping | None = option(None, note="file name -> sha256, for a corpus of several files")
    exclude: Mapping | None = option(None, note="a corpus (path, url, sha256, member) whose lines are dropped")
    member: str | None = option(None)
    encoding: str = option("utf-8", example="gbk")
    cache_dir: str | Path | None = option(None)
    seq_len: int = option(35, ge=1)
    eval_seq_len: int | None = option(None, ge=1)
    batch_size: int = option(32, ge=1)
    val_fraction: float = option(0.1, gt=0, lt=1)
    test_fraction: float = option(0.1, ge=0, lt=1)
    test_max_tokens: int | None = option(None, ge=1)
    train_on_val: bool = option(False)
    min_freq: int = option(2, ge=1)
    char_min_freq: int = option(2, ge=1, note="char fallback: the characters kept in the vocabulary; 1: all")
    max_vocab: int | None = option(None, ge=1)
    num_workers: int = option(0, ge=0)
    stateful: bool = option(False)
    blank_lines: bool = option(False)
    hmm: bool = option(True)
    tokenize_workers: int | None = option(None, ge=1)


class LyricsDataModule(L.LightningDataModule):
    """Lyrics from a text file, a folder of `.txt` songs, or a `.zip` (downloaded from `url` if missing).

    Args:
        path: the corpus: a text file, a folder of `.txt` files (one song each) or a `.zip`; with
            `format="songci"`, a folder of chinese-poetry JSON files (one song per ci, its tune as a title line).
        format: `text` or `songci` (`lyricgen.data.source`).
        url, sha256: where to download `path` from when it is missing, and its checksum.
        files: a corpus of several files in the folder `path`: file name -> sha256, each downloaded from
            `url` + name when missing (`url` is then the folder's address).
        exclude: a corpus whose lines are dropped from this one (`format="lyrics_zh"`: the Jay Chou corpus, so
            that nothing of its held-out lines is pre-trained on): `path`, and `url`, `sha256`, `member` as above.
        member: the file inside a `.zip` to read.
        encoding: text encoding of the corpus.
        cache_dir: where the tokenised corpus is cached (None: no cache).
        seq_len, batch_size: shape of the training batches.
        eval_seq_len: length of the validation and test chunks (None: seq_len). Each chunk starts from a
            zero state, so longer chunks let a recurrent model read the text with the context it has
            when it generates (a character model needs dozens of characters to warm up).
        val_fraction: share of the lines held out for validation (the block before the test split).
        test_fraction: share of the lines (from the end) held out for the final test.
        test_max_tokens: a big test split is cut to its first lines (whole songs for a folder of songs)
            that hold at most this many tokens, so that its pass takes bounded time; the rest of the block
            is not used (None: the whole block).
        train_on_val: train on the validation lines too (train = every line before the test split), for a
            final run of settings already tuned on val, as nanoGPT trains on all but its last 10%. The
            validation lines are then not held out: `scripts/train.py` runs no validation and tests the
            last checkpoint (`lyricgen.config.final_run`).
        min_freq: words seen fewer times in the training split become `<unk>` (with char fallback: are written
            as their characters).
        char_min_freq: with char fallback, the characters seen at least this many times in the training split
            are tokens of the vocabulary (1: every one); rarer ones are `<unk>`, which the model then learns to
            predict where a rare character comes.
        max_vocab: keep only this many of the most frequent words (besides `<unk>`); None: no limit.
        stateful: lay the training stream out as `batch_size` parallel streams for truncated BPTT.
        tokenizer: how text becomes tokens (`conf/tokenizer/`: jieba words, characters, English words).
        blank_lines: keep empty lines (plays and prose, where they separate speeches); lyrics drop them.
        hmm: jieba's HMM switch, for configs made before `tokenizer` (used when no tokenizer is given).
        tokenize_workers: processes that tokenise a corpus the cache does not hold yet (None: every
            usable core; small corpora are tokenised in this process).
    """

    SPLITS = ("train", "val", "test")

    def __init__(
        self,
        path: str,
        format: str = "text",
        url: str | None = None,
        sha256: str | None = None,
        files: Mapping | None = None,
        exclude: Mapping | None = None,
        member: str | None = None,
        encoding: str = "utf-8",
        cache_dir: str | None = None,
        seq_len: int = 35,
        eval_seq_len: int | None = None,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        test_max_tokens: int | None = None,
        train_on_val: bool = False,
        min_freq: int = 2,
        char_min_freq: int = 2,
        max_vocab: int | None = None,
        num_workers: int = 0,
        stateful: bool = False,
        tokenizer: Tokenizer | None = None,
        blank_lines: bool = False,
        hmm: bool = True,
        tokenize_workers: int | None = None,
    ) -> None:
        super().__init__()
        options = {k: v for k, v in locals().items() if k in DataOptions.__dataclass_fields__}
        check(options, DataOptions, "data.")  # each option's type and range
        if val_fraction + test_fraction >= 1:
            raise LyricgenError(
                f"data.val_fraction + data.test_fraction must be below 1 to leave lines for training, "
                f"got {val_fraction} + {test_fraction}; e.g. data.val_fraction=0.1 data.test_fraction=0.1"
            )
        if test_max_tokens is not None and test_max_tokens <= seq_len:
            raise LyricgenError(
                f"data.test_max_tokens={test_max_tokens} leaves the test split less than one chunk of "
                f"data.seq_len + 1 = {seq_len + 1} tokens; raise it (e.g. data.test_max_tokens=100000) or set it "
                "to null"
            )
        self.path, self.url, self.sha256, self.member = path, url, sha256, member
        self.format, self.files = format, dict(files) if files else None
        self.exclude = dict(exclude) if exclude else None
        self.encoding, self.cache_dir = encoding, cache_dir
        self.seq_len, self.batch_size, self.val_fraction = seq_len, batch_size, val_fraction
        self.eval_seq_len = eval_seq_len or seq_len
        self.test_fraction, self.train_on_val = test_fraction, train_on_val
        self.test_max_tokens = test_max_tokens
        self.min_freq, self.num_workers, self.stateful = min_freq, num_workers, stateful
        self.char_min_freq = char_min_freq
        self.max_vocab = max_vocab
        self.tokenizer = tokenizer or JiebaTokenizer(hmm=hmm)
        self.blank_lines = blank_lines
        self.tokenize_workers = tokenize_workers
        self.vocab: Vocab | None = None  # set it before setup() to reuse a checkpoint's vocabulary
        self.init_vocab: Vocab | None = None  # a trained model's vocabulary (`use_model`)
        self.new_rows = False  # append the training split's characters that `init_vocab` lacks (`use_model`)
        self.corpus: TokenizedCorpus | None = None  # the whole corpus as ids (`lyricgen.data.corpus`)
        self.spans: dict[str, tuple[int, int]] = {}  # per split: its [start, stop) token offsets in the corpus
        self.lines: dict[str, tuple[int, int]] = {}  # per split: its [start, stop) line indices
        self._loaded: TokenizedCorpus | None = None
        self.chars: dict[str, SplitChars] = {}  # per held-out split: what bits per character counts
        self.unk_share: dict[str, float] = {}  # per held-out split: share of its tokens that are <unk>

    def _corpus(self) -> TokenizedCorpus:
        """The corpus as ids: mapped from the token cache, or tokenised (and cached) when it is not there;
        once per process (Lightning calls prepare_data again in each fit and test)."""
        if self._loaded is not None:
            return self._loaded
        digest = corpus_digest(self.path, self.encoding, self.member, self.blank_lines, self.format, self.exclude)
        songs = functools.cache(self._read_songs)  # the text read once, by the first step that needs it (if any)
        if self.tokenizer.needs_training:
            self._fit_tokenizer(digest, songs)
        self._loaded = load_or_tokenize(
            songs,
            self.tokenizer,
            digest,
            self.cache_dir,
            self.tokenize_workers,
        )
        return self._loaded

    def _read_songs(self) -> list[Song]:
        return read_songs(self.path, self.encoding, self.member, self.blank_lines, self.format, self.exclude)[0]

    def _fit_tokenizer(self, digest: str, read_songs: Callable[[], list[Song]]) -> None:
        """Learn the tokeniser (sentencepiece) from the training split alone (the validation lines too in a final
        run), once: its model is kept in `cache_dir` beside the token cache, keyed by the corpus, the tokeniser's
        settings and the split. `read_songs`: the corpus's text, read only when the model is not cached."""
        split = {"val": self.val_fraction, "test": self.test_fraction, "train_on_val": self.train_on_val}
        key = json.dumps({"corpus": digest, "tokenizer": self.tokenizer.cache_settings, "split": split}, sort_keys=True)
        name = f"{self.tokenizer.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.model"
        path = Path(self.cache_dir) / name if self.cache_dir is not None else None  # None: learnt in every run
        if path is not None and path.is_file():
            self.tokenizer.model = path.read_bytes()
            log.info("Tokeniser %s read from %s", self.tokenizer.name, path)
            return
        lines = training_lines(read_songs(), self.val_fraction, self.test_fraction, self.train_on_val)
        self.tokenizer.fit(lines)
        log.info("Tokeniser %s learnt from the %s training lines", self.tokenizer.name, f"{len(lines):,}")
        if path is not None:
            try:
                write_atomically(path, self.tokenizer.model)
            except OSError as e:  # the run goes on; the next one learns it again
                log.warning("Tokeniser not cached: %s (%s)", path, e.strerror or e)

    def _ensure_source(self) -> None:
        """Download the corpus when it is missing (once, with its checksums); check it when it is there."""
        if self.files:
            ensure_files(self.path, self.url, self.files)
        elif self.url:
            ensure_file(self.path, self.url, self.sha256)
        if self.exclude:
            ensure_file(self.exclude["path"], self.exclude.get("url"), self.exclude.get("sha256"))

    def prepare_data(self) -> None:
        """Download (once, with checksum) and fill the token cache; runs on one process only."""
        self._ensure_source()
        self._corpus()

    def use_model(self, tokenizer: Tokenizer, vocab: Vocab, new_rows: bool = False) -> None:
        """Encode this corpus as a trained model reads it, before `setup`: with its tokeniser (which replaces
        this module's) and its vocabulary (resuming, evaluating). `new_rows` (fine-tuning): the training split's
        characters the vocabulary lacks are appended to it (char fallback), to become new rows of the model."""
        self.tokenizer, self.init_vocab, self.new_rows = tokenizer, vocab, new_rows

    def tokens(self, split: str) -> list[str]:
        """The tokens of a split ("train", "val", "test") as strings, `<unk>` not applied (for the
        evaluation measures and tests; training reads `train_ids`)."""
        return self.corpus.tokens(*self.spans[split])

    def written_tokens(self, split: str) -> list[str]:
        """The tokens of a split as the model reads them: with char fallback, a word outside the vocabulary as
        its characters (`Tokenizer.written`)."""
        return self.tokenizer.written(self.tokens(split), self.vocab)

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return  # already set up (the training function sets up before the trainer does)
        self._ensure_source()
        corpus = self._corpus()
        lines, spans = self._split(corpus)
        self._check_sizes(corpus, spans)
        types = corpus.ids[slice(*spans["train"])]
        counts = dict(zip(corpus.types, np.bincount(types, minlength=len(corpus.types)).tolist()))
        self.vocab = self._vocabulary(counts, spans)
        one_char = self.tokenizer.char_fallback or self.tokenizer.name == "char"  # what an <unk> stands for
        speller = Speller.of_training(counts, self.vocab, one_char)
        self.type_ids = TypeIds(corpus.types, self.vocab, self.tokenizer.char_fallback, speller)
        self.train_ids, self.val_ids, self.test_ids = (
            torch.from_numpy(self.type_ids.ids(corpus.ids[slice(*spans[split])])) for split in self.SPLITS
        )
        self._measure_held_out(corpus, lines, spans)
        log.info(
            "Corpus: %d training%s, %d validation, %d test tokens, vocabulary of %d (min_freq=%d, max_vocab=%s%s), "
            "<unk> share val %.3f test %.3f",
            len(self.train_ids), " (the validation lines included: data.train_on_val)" if self.train_on_val else "",
            len(self.val_ids), len(self.test_ids), len(self.vocab), self.min_freq, self.max_vocab,
            f", the characters seen {self.char_min_freq}+ times" if self.tokenizer.char_fallback else "",
            self.unk_share.get("val", 0.0), self.unk_share.get("test", 0.0),
        )  # fmt: skip
        self.corpus, self.spans = corpus, spans
        if self.train_on_val:
            lines["train"] = (0, lines["val"][1])
        self.lines = lines  # per split: its [start, stop) line indices

    def _split(self, corpus: TokenizedCorpus) -> tuple[dict, dict]:
        """Protocol v2: each split's [start, stop) line indices and token offsets (`split_lines`), the test
        split cut to data.test_max_tokens, the training split with the validation lines in a final run."""
        val_start, test_start = split_lines(corpus.song_lines, self.val_fraction, self.test_fraction)
        bounds = [0, corpus.line_offset(val_start), corpus.line_offset(test_start), len(corpus)]
        spans = dict(zip(self.SPLITS, zip(bounds, bounds[1:])))
        if self.train_on_val:  # the vocabulary, the training stream and the n-grams of no_copy take both blocks
            spans["train"] = (0, spans["val"][1])
        lines = dict(zip(self.SPLITS, ((0, val_start), (val_start, test_start), (test_start, corpus.n_lines))))
        if (
            self.test_fraction > 0
            and (test_stop := bounded_stop(corpus, test_start, self.test_max_tokens)) < corpus.n_lines
        ):
            lines["test"], spans["test"] = (test_start, test_stop), (bounds[2], corpus.line_offset(test_stop))
            log.info(
                f"Test split: its first {test_stop - test_start:,} of {corpus.n_lines - test_start:,} lines, "
                f"{spans['test'][1] - bounds[2]:,} of its {len(corpus) - bounds[2]:,} tokens "
                f"(data.test_max_tokens={self.test_max_tokens:,}; null: all)"
            )
        return lines, spans

    def _check_sizes(self, corpus: TokenizedCorpus, spans: dict) -> None:
        """Refuse splits shorter than a chunk, and a training split shorter than a batch."""
        need = self.seq_len + 1
        size = {split: stop - start for split, (start, stop) in spans.items()}
        sizes = {"training": size["train"], "validation": size["val"]}
        if self.test_fraction > 0:
            sizes["test"] = size["test"]
        listed = ", ".join(f"{n} for {name}" for name, n in sizes.items())
        if min(sizes.values()) < need and sum(sizes.values()) >= len(sizes) * need:  # tokens enough, lines not
            raise LyricgenError(
                f"corpus {self.path} has {corpus.n_lines:,} line{'s' if corpus.n_lines != 1 else ''} for "
                f"{len(corpus):,} tokens, and the splits are made of whole lines, so one split gets (nearly) all "
                f"of it ({listed}); break the text into lines (one lyric line or sentence per line)"
            )
        if min(sizes.values()) < need:
            raise LyricgenError(
                f"corpus {self.path} is too short: {sum(sizes.values())} tokens ({listed}), but each split "
                f"needs at least data.seq_len + 1 = {need}; give more text or lower data.seq_len"
            )
        if size["train"] < self.batch_size * self.seq_len + 1:
            raise LyricgenError(
                f"the training split of {self.path} has {size['train']:,} tokens, less than one batch "
                f"(data.batch_size {self.batch_size} x data.seq_len {self.seq_len} = "
                f"{self.batch_size * self.seq_len:,} tokens); give more text or lower data.batch_size or data.seq_len"
            )

    def _vocabulary(self, counts: dict[str, int], spans: dict) -> Vocab:
        """The vocabulary of the training split's token `counts`; or a trained model's (`use_model`), with the
        training split's characters it lacks appended when fine-tuning; or the one set before setup, which these
        settings must build again."""
        chars = self.tokenizer.char_fallback
        fixed = self.tokenizer.fixed_tokens()  # sentencepiece: its pieces, whatever their counts
        built = (
            Vocab([UNK, NEWLINE, *fixed])
            if fixed
            else Vocab.from_counts(counts, self.min_freq, self.max_vocab, chars, self.char_min_freq)
        )
        if self.init_vocab is not None:
            return self._model_vocabulary(counts, built)
        least = self.tokenizer.min_vocab
        if self.vocab is None and len(built) - 1 < least:
            if self.max_vocab is not None and self.max_vocab < least:
                raise LyricgenError(
                    f"data.max_vocab={self.max_vocab} leaves a vocabulary of {len(built) - 1} words besides <unk>; "
                    f"a model needs at least {least}: raise data.max_vocab (or leave it null)"
                )
            raise LyricgenError(
                f"data.min_freq={self.min_freq} leaves a vocabulary of {len(built) - 1} words besides <unk> "
                f"(from {spans['train'][1] - spans['train'][0]:,} training tokens of {self.path}); a model needs at "
                f"least {least}: lower data.min_freq (e.g. data.min_freq=2) or give more text"
            )
        if self.vocab is not None and self.vocab != built:  # a vocabulary given from a checkpoint
            raise LyricgenError(
                f"the vocabulary of the checkpoint ({len(self.vocab)} words) does not match this data "
                f"({len(built)} words from {self.path}, min_freq={self.min_freq}); use the data settings "
                "of the run that wrote the checkpoint"
            )
        return self.vocab or built

    def _model_vocabulary(self, counts: dict[str, int], built: Vocab) -> Vocab:
        """A trained model's vocabulary (`use_model`) over this corpus: fine-tuning (`new_rows`), with the
        training split's characters of data.char_min_freq that it lacks appended; else (resuming, evaluating) as
        it is, refused when the training split holds what it lacks (characters, with char fallback; else words
        of min_freq): then these are not the data settings of the run that made it."""
        if self.tokenizer.char_fallback:  # the characters of data.char_min_freq (its words are spelt with them)
            lacking = [t for t in built.itos if len(t) == 1 and t not in self.init_vocab]
        else:
            lacking = [t for t in built.itos if t not in self.init_vocab]
        if self.new_rows and self.tokenizer.char_fallback:
            return self.init_vocab.extended(lacking)
        if lacking and not self.new_rows:
            what = "characters" if self.tokenizer.char_fallback else f"words of min_freq={self.min_freq}"
            raise LyricgenError(
                f"the vocabulary of the checkpoint ({len(self.init_vocab):,} tokens) does not match this data: it "
                f"lacks {len(lacking):,} {what} of the training split of {self.path} (e.g. "
                f"{', '.join(repr(t) for t in lacking[:3])}); use the data settings of the run that wrote it"
            )
        return self.init_vocab

    def _measure_held_out(self, corpus: TokenizedCorpus, lines: dict, spans: dict) -> None:
        """Each held-out split's `chars` (what bits per character counts, `SplitChars`) and `<unk>` share. The
        first token is never a target: the figures are over the rest, and the characters are those of the
        split's lines less what its first token (its first piece, when spelt out) stands for."""
        unk = self.vocab.unk_id
        for stage, ids in (("val", self.val_ids), ("test", self.test_ids)):
            if len(ids) <= 1:
                continue
            (first, end), (start, stop) = lines[stage], spans[stage]
            first_type = int(corpus.ids[start])
            if self.tokenizer.additive_length:
                first_chars = int(self.type_ids.first_chars[first_type])
            else:  # the tokeniser's own text of the first line, with and without its first token
                first_line = corpus.tokens(start, corpus.line_offset(first + 1))
                first_chars = int(corpus.line_chars[first]) - self.tokenizer.text_length(first_line[1:])
            types = corpus.ids[start:stop]
            unk_bits = float(self.type_ids.unk_bits[types].sum() - self.type_ids.first_unk_bits[first_type])
            chars = int(corpus.line_chars[first:end].sum()) - first_chars
            self.chars[stage] = SplitChars(len(ids) - 1, chars, unk_bits)
            if stage == "test" or not self.train_on_val:  # a share of the held-out splits only
                self.unk_share[stage] = float((ids[1:] == unk).float().mean())
        if self.unk_share.get("val", 0.0) > MAX_UNK_SHARE:
            what = (
                "characters the training split never has"
                if self.tokenizer.char_fallback
                else f"words the training split has fewer than data.min_freq={self.min_freq} times"
            )
            raise LyricgenError(
                f"{self.unk_share['val']:.0%} of the validation split's {len(self.val_ids) - 1:,} tokens are <unk> "
                f"({what}), above {MAX_UNK_SHARE:.0%}: its perplexity would measure nothing; "
                "lower data.min_freq or give more text"
            )

    def songs(self, split: str, first_line: str = "《") -> list[Song]:
        """The songs of a split whose first line begins with `first_line` (e.g. the title line of a ci,
        `《浣溪沙》`), as lines of text; others are skipped before their text is made."""
        return self.corpus.songs(*self.lines[split], self.tokenizer.join, first_line)

    def training_ngrams(self, max_n: int = 8) -> NgramIndex:
        """The hashed word n-grams of the training split (`lyricgen.data.ngrams`), from its ids: inside lines,
        phrase-break spaces skipped, runs with `<unk>` left out."""
        ids = self.train_ids.numpy()
        breaks = ids == self.vocab.stoi.get(NEWLINE, -1)
        words = ~breaks & (ids != self.vocab.stoi.get(SPACE, -1))
        line_of = np.cumsum(breaks) - breaks  # the number of line breaks before each token
        return NgramIndex.from_arrays(ids[words], line_of[words], max_n, self.vocab.unk_id)

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=pad_collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.stateful:
            if self.trainer is not None and self.trainer.world_size > 1:
                raise LyricgenError("data.stateful=true needs one process; use it without trainer=ddp")
            # Each item is already a batch; order matters (batch k+1 continues batch k), so no shuffling.
            dataset = StreamDataset(self.train_ids, self.batch_size, self.seq_len)
            return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.num_workers)
        return self._loader(ChunkDataset(self.train_ids, self.seq_len), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(ChunkDataset(self.val_ids, self.eval_seq_len), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.test_fraction == 0:
            raise LyricgenError("data.test_fraction is 0: there is no test split; set it to e.g. 0.1")
        return self._loader(ChunkDataset(self.test_ids, self.eval_seq_len), shuffle=False)
