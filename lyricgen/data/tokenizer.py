"""Word-level tokenisation with jieba, line by line, and a cache of the tokenised corpus.

Whitespace: inside a line, any run of whitespace (ASCII spaces, tabs, full-width U+3000 spaces) is
one phrase break and becomes a single space token " "; whitespace at the ends of a line is dropped.
Each line ends with the newline token "\\n", so that generated lyrics keep their line structure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

NEWLINE = "\n"
SPACE = " "
CACHE_FORMAT = 1


class Tokenizer:
    """Segments text into words with jieba; `hmm` is jieba's HMM switch for unseen words."""

    def __init__(self, hmm: bool = True) -> None:
        self.hmm = hmm
        self._jieba = None

    @property
    def settings(self) -> dict:
        import jieba

        return {"name": "jieba", "hmm": self.hmm, "jieba_version": getattr(jieba, "__version__", "?")}

    def _cut(self, text: str) -> list[str]:
        if self._jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not progress the user needs
            self._jieba = jieba
        return self._jieba.lcut(text, HMM=self.hmm)

    def tokenize_line(self, line: str) -> list[str]:
        """Words of one line, phrase breaks as " ", without the trailing newline token."""
        tokens: list[str] = []
        for i, phrase in enumerate(line.split()):
            if i:
                tokens.append(SPACE)
            tokens.extend(self._cut(phrase))
        return tokens

    def tokenize(self, text: str) -> list[str]:
        """Words of a text of several lines; line breaks inside it become newline tokens."""
        tokens: list[str] = []
        for i, line in enumerate(text.split("\n")):
            if i:
                tokens.append(NEWLINE)
            tokens.extend(self.tokenize_line(line))
        return tokens


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def tokenize_songs(
    songs: list[list[str]], tokenizer: Tokenizer, corpus_sha256: str, cache_dir: str | os.PathLike | None
) -> list[list[list[str]]]:
    """Tokenise every line of every song, through a cache keyed by the corpus and the tokeniser settings.

    The cache file is written atomically and carries its own key and a digest of its payload, so a
    truncated or foreign file is detected, reported as a warning and rebuilt.
    """
    key_src = json.dumps({"corpus": corpus_sha256, "tokenizer": tokenizer.settings, "format": CACHE_FORMAT}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()
    path = Path(cache_dir) / f"tokens-{key[:16]}.json" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            payload = json.dumps(cached["songs"], ensure_ascii=False)
            if cached["key"] != key or cached["digest"] != hashlib.sha256(payload.encode()).hexdigest():
                raise ValueError("key or digest does not match")
            log.info("Tokenised corpus read from cache %s", path)
            return cached["songs"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            log.warning("Token cache %s is corrupt (%s); rebuilding it", path, e)
    tokenized = [[tokenizer.tokenize_line(line) for line in song] for song in songs]
    if path is not None:
        payload = json.dumps(tokenized, ensure_ascii=False)
        digest = hashlib.sha256(payload.encode()).hexdigest()
        _atomic_write_text(path, json.dumps({"key": key, "digest": digest, "songs": tokenized}, ensure_ascii=False))
        log.info("Tokenised corpus cached in %s", path)
    return tokenized
