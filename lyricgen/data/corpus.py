"""The tokenised corpus: one array of token ids, made on every core once, then memory-mapped from a cache.

`TokenizedCorpus` holds the whole corpus as one stream, each line followed by the newline token:
- `ids` (int32): indices into `types`, the corpus's distinct tokens in order of first appearance (not a
  model vocabulary: that is made later from the training split alone);
- `line_ends[k]`: the offset just after line k's newline token;
- `line_chars[k]`: the characters line k stands for, its line break included (what bpc divides by);
- `song_lines[s]`: how many lines song s has (the splits take whole songs from the end).

Tokenising runs in worker processes over blocks of lines (`tokenize_corpus`), each with the tokeniser
loaded once (jieba's dictionary: forked workers share the parent's), and merges the blocks in corpus
order, so the tokens are exactly those of one process going line by line.

The cache is a folder `tokens-<key>/` in `data.cache_dir`, keyed by the corpus bytes, the tokeniser
settings and the format: `ids.npy`, `line_ends.npy`, `line_chars.npy`, `song_lines.npy` and `meta.json`
(the key, the types, the sha256 of each array file and of the types). It is written in a temporary folder and renamed
into place, so a reader sees a whole cache or none. A reader checks the key and the digests and maps
`ids.npy` (`numpy.load(mmap_mode="r")`): nothing is parsed, and no Python list of the tokens is made. A
cache that fails the check is reported and rebuilt. Processes started together on one cache folder
(torchrun or srun on several machines, where every process runs `prepare_data`) take turns on a lock file
beside it, `.tokens-<key>.lock` (deleted when done): the first tokenises, the others wait and then map
its cache. The JSON caches of lyricgen before 0.2 (files `tokens-*.json`) are neither read nor deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from lyricgen.data.source import Song, sha256_file
from lyricgen.data.tokenizer import NEWLINE, Tokenizer, from_settings

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 1: JSON of token strings (lyricgen 0.1); 2: memory-mapped ids
BLOCK_CHARS = 20_000  # lines go to the workers in blocks of about this many characters
ARRAYS = ("ids", "line_ends", "line_chars", "song_lines")


def usable_cpus() -> int:
    """The cores this process may run on (a container or `taskset` may give fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass
class TokenizedCorpus:
    types: list[str]
    ids: np.ndarray
    line_ends: np.ndarray
    line_chars: np.ndarray
    song_lines: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_lines(self) -> int:
        return len(self.line_ends)

    def line_offset(self, line: int) -> int:
        """The token offset where line `line` starts (the stream's length for `line == n_lines`)."""
        return int(self.line_ends[line - 1]) if line > 0 else 0

    def type_id(self, token: str) -> int:
        """The id of `token` in `types`, or -1 when the corpus never has it."""
        return self.types.index(token) if token in self.types else -1

    def tokens(self, start: int, stop: int) -> list[str]:
        """The tokens at offsets [start, stop) as strings (for evaluation and tests, not for set-up)."""
        return np.asarray(self.types, dtype=object)[self.ids[start:stop]].tolist()

    def songs(self, start: int, stop: int, join: Callable[[list[str]], str], first_line: str = "") -> list[Song]:
        """The songs whose lines lie in [start, stop) and whose first line begins with `first_line`, as lines of
        text made by `join` (a tokeniser's); the others are skipped before their text is made."""
        bounds = np.concatenate([[0], np.cumsum(self.song_lines)])
        types = np.asarray(self.types, dtype=object)
        songs = []
        for s in range(len(self.song_lines)):
            first, end = int(bounds[s]), min(int(bounds[s + 1]), stop)
            if first >= end or first < start:
                continue
            a = self.line_offset(first)
            if not self.types[int(self.ids[a])].startswith(first_line):
                continue
            offsets = [self.line_offset(k) for k in range(first, end + 1)]
            tokens = types[self.ids[offsets[0] : offsets[-1]]].tolist()
            songs.append([join(tokens[i - a : j - a - 1]) for i, j in zip(offsets, offsets[1:])])
        return songs

    def save(self, folder: Path, key: str) -> None:
        """Write the cache folder atomically: a temporary folder renamed into place."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        try:
            digests = {}
            for name in ARRAYS:
                np.save(tmp / f"{name}.npy", getattr(self, name), allow_pickle=False)
                digests[name] = sha256_file(tmp / f"{name}.npy")
            digests["types"] = _types_digest(self.types)
            meta = {"format": CACHE_FORMAT, "key": key, "sha256": digests, "types": self.types}
            (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
            if folder.exists():  # a corrupt cache: replaced whole
                shutil.rmtree(folder)
            try:
                os.rename(tmp, folder)
            except OSError:  # another process wrote the same cache meanwhile: keep theirs
                if not folder.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, key: str) -> TokenizedCorpus:
        """Map a cache folder, after checking its key, its digests and its shapes; ValueError if it fails."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta["format"] != CACHE_FORMAT or meta["key"] != key:
                raise ValueError("its key does not match")
            arrays = {}
            for name in ARRAYS:
                path = folder / f"{name}.npy"
                if sha256_file(path) != meta["sha256"][name]:
                    raise ValueError(f"{name}.npy does not match its sha256")
                arrays[name] = np.load(path, mmap_mode="r" if name == "ids" else None, allow_pickle=False)
            if _types_digest(meta["types"]) != meta["sha256"]["types"]:
                raise ValueError("its types do not match their sha256")
            corpus = cls(types=list(meta["types"]), **arrays)
        except (OSError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise ValueError(f"{type(e).__name__}: {e}") from None
        ids, ends = corpus.ids, corpus.line_ends
        if not (
            ids.dtype == np.int32
            and ids.ndim == 1
            and len(ends) == len(corpus.line_chars) == int(corpus.song_lines.sum())
            and (len(ends) == 0 or int(ends[-1]) == len(ids))
            and (len(ids) == 0 or 0 <= int(ids.min()) and int(ids.max()) < len(corpus.types))
        ):
            raise ValueError("its arrays do not fit together")
        return corpus


def _types_digest(types: list[str]) -> str:
    return hashlib.sha256(json.dumps(types, ensure_ascii=False).encode()).hexdigest()


def _blocks(songs: list[Song], size: int) -> list[list[str]]:
    """The corpus's lines, in order, in blocks of about `size` characters."""
    blocks, block, chars = [], [], 0
    for song in songs:
        for line in song:
            block.append(line)
            chars += len(line) + 1
            if chars >= size:
                blocks.append(block)
                block, chars = [], 0
    if block:
        blocks.append(block)
    return blocks


_worker_tokenizer: Tokenizer | None = None


def _start_worker(settings: dict) -> None:
    global _worker_tokenizer
    _worker_tokenizer = from_settings(settings)
    _worker_tokenizer.load()  # once per process (a forked worker finds jieba's dictionary loaded already)


def _tokenize_block(lines: list[str], tokenizer: Tokenizer | None = None):
    """One block of lines -> (its distinct tokens, their ids per token, line ends, line characters).

    A line seen before in the block is not tokenised again (a line's tokens depend on the line alone):
    lyrics repeat their choruses, and 44% of the Jay Chou corpus's lines repeat one within 20,000
    characters before them. Blocks are small, so only nearby repeats are reused, as in any corpus.
    """
    tok = tokenizer or _worker_tokenizer
    memo: dict[str, list[str]] = {}
    flat: list[str] = []
    ends = []
    for line in lines:
        tokens = memo.get(line)
        if tokens is None:
            tokens = memo[line] = [*tok.tokenize_line(line), NEWLINE]
        flat += tokens
        ends.append(len(flat))
    types = list(dict.fromkeys(flat))  # in order of first appearance
    index = {t: i for i, t in enumerate(types)}
    ids = np.fromiter(map(index.__getitem__, flat), np.int32, len(flat))
    ends = np.asarray(ends, np.int64)
    if tok.additive_length:  # a line's characters: the sum of its tokens' lengths
        lengths = np.fromiter(map(len, types), np.int64, len(types))
        chars = np.add.reduceat(lengths[ids], np.concatenate([[0], ends[:-1]])) if len(ids) else ends
    else:  # the tokeniser's own text of each distinct line
        length = {line: tok.text_length(tokens) for line, tokens in memo.items()}
        chars = np.fromiter(map(length.__getitem__, lines), np.int64, len(lines))
    return types, ids, ends, chars


def _pool_context():
    # fork where it is safe and cheap (Linux): the workers start in milliseconds with the tokeniser loaded,
    # as PyTorch's DataLoader workers do; elsewhere the platform's default (spawn) and a load per worker.
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context()


def tokenize_corpus(songs: list[Song], tokenizer: Tokenizer, workers: int | None = None) -> TokenizedCorpus:
    """Tokenise every line of every song, on `workers` processes (None: every usable core)."""
    from tqdm.auto import tqdm

    blocks = _blocks(songs, BLOCK_CHARS)
    workers = max(1, min(workers or usable_cpus(), len(blocks)))
    total = sum(len(line) + 1 for block in blocks for line in block)
    if workers > 1:
        log.info("Tokenising %s characters with %d processes", f"{total:,}", workers)
    tokenizer.load()  # before forking, so that every worker has it
    table: dict[str, int] = {}
    ids, ends, chars, offset = [], [], [], 0
    # a progress bar for corpora that take more than a few seconds (and only on a terminal)
    with tqdm(total=total, unit="char", unit_scale=True, desc="Tokenising", delay=3, disable=None) as bar:
        pool = _pool_context().Pool(workers, _start_worker, (tokenizer.settings,)) if workers > 1 else None
        try:
            results = pool.imap(_tokenize_block, blocks) if pool else (_tokenize_block(b, tokenizer) for b in blocks)
            for block, (types, block_ids, block_ends, block_chars) in zip(blocks, results):
                lut = np.asarray([table.setdefault(t, len(table)) for t in types], np.int32)
                ids.append(lut[block_ids])
                ends.append(block_ends + offset)
                chars.append(block_chars)
                offset += len(block_ids)
                bar.update(sum(len(line) + 1 for line in block))
        finally:
            if pool:
                pool.terminate()
    return TokenizedCorpus(
        types=list(table),
        ids=np.concatenate(ids) if ids else np.zeros(0, np.int32),
        line_ends=np.concatenate(ends) if ends else np.zeros(0, np.int64),
        line_chars=np.concatenate(chars) if chars else np.zeros(0, np.int64),
        song_lines=np.asarray([len(song) for song in songs], np.int64),
    )


def cache_key(corpus_sha256: str, tokenizer: Tokenizer) -> str:
    src = json.dumps(
        {"corpus": corpus_sha256, "tokenizer": tokenizer.cache_settings, "format": CACHE_FORMAT}, sort_keys=True
    )
    return hashlib.sha256(src.encode()).hexdigest()


def load_or_tokenize(
    read_songs: Callable[[], list[Song]],
    tokenizer: Tokenizer,
    corpus_sha256: str,
    cache_dir: str | os.PathLike | None,
    workers: int | None = None,
) -> TokenizedCorpus:
    """The tokenised corpus: mapped from the cache when it holds this corpus and tokeniser, else tokenised
    (the text is only read, by `read_songs`, then) and cached."""
    key = cache_key(corpus_sha256, tokenizer)
    if cache_dir is None:
        return tokenize_corpus(read_songs(), tokenizer, workers)
    folder = Path(cache_dir) / f"tokens-{key[:16]}"
    with _cache_lock(folder):  # processes started together: one tokenises, the others then map its cache
        if folder.exists():
            try:
                corpus = TokenizedCorpus.load(folder, key)
                log.info("Tokenised corpus mapped from cache %s (%s tokens)", folder, f"{len(corpus):,}")
                return corpus
            except ValueError as e:
                log.warning("Token cache %s is corrupt (%s); rebuilding it", folder, e)
        corpus = tokenize_corpus(read_songs(), tokenizer, workers)
        try:
            corpus.save(folder, key)
        except OSError as e:  # a folder that cannot be written: the run goes on, the next one tokenises again
            log.warning(
                "Token cache not written: %s (%s); the corpus is tokenised again by every run until "
                "data.cache_dir is a folder that can be written (or null: no cache)",
                folder,
                e.strerror or e,
            )
            return corpus
        log.info("Tokenised corpus cached in %s (%s tokens)", folder, f"{len(corpus):,}")
        return corpus


@contextmanager
def _cache_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder`'s lock file (none where it cannot be made: a read-only folder).

    The file is deleted on the way out: a process still waiting on it, or one that makes a new one, then finds
    the cache made and only maps it (two such processes may map it at once, which is harmless)."""
    path = folder.parent / f".{folder.name}.lock"
    lock = FileLock(path)  # fcntl on Linux and macOS, msvcrt on Windows
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("Waiting for another process to tokenise the corpus into %s", folder)
            lock.acquire()
    except OSError:  # a folder that cannot be written: no lock (the cache is not written there either)
        yield
        return
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before the lock is released
        lock.release()
