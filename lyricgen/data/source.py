"""Where the text comes from: download with checksum, then read a zip member, a file or a folder.

Three formats: `text` (a text file, a `.zip` member or a folder of `.txt` files, one song each), `songci`
(a folder of the chinese-poetry collection's JSON files, e.g. 全宋词's `ci.song.0.json` ...: each record
`{"rhythmic": tune, "paragraphs": [lines]}` is one song, its tune (词牌) as a title line `《浣溪沙》`) and
`lyrics_zh` (the folder of lyrics_zh's train.txt, valid.txt and test.txt, read in that order as one text and
cleaned by `lyricgen.data.cleaning`, with the lines of an `exclude` corpus dropped).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path

from lyricgen.data.cleaning import CLEANING_VERSION, clean_lyrics_zh
from lyricgen.errors import LyricgenError

log = logging.getLogger(__name__)

Song = list[str]  # the lines of one song (or of a whole single-file corpus)
FORMATS = ("text", "songci", "lyrics_zh")
LYRICS_ZH_FILES = ("train.txt", "valid.txt", "test.txt")  # lyrics_zh's own splits, read in this order
TITLE = re.compile(r"^《(.+)》$")  # the title line of a ci: its tune
WHAT_PATH_TAKES = "set data.path to a text file or a folder of .txt files"


def title_line(tune: str) -> str:
    """The first line of a ci: its tune (词牌) in title brackets, `《浣溪沙》`."""
    return f"《{tune}》"


def _natural_key(path: Path) -> list:
    """`ci.song.2000.json` before `ci.song.10000.json`: the collection's own order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def as_url(location: str) -> str:
    """`data.url` as a URL: one with a scheme (https://, file://) as it is; a local path (`/data/x.zip`,
    `~/x.zip`, `C:\\data\\x.zip` on Windows) as its file:// URL, made by `Path.as_uri()`. (A one-letter
    "scheme" is a drive letter.)"""
    if len(urllib.parse.urlsplit(location).scheme) > 1:
        return location
    return Path(location).expanduser().resolve().as_uri()


def file_url(base: str, name: str) -> str:
    """The URL of file `name` in the folder at `base` (a URL or a local path), `name` percent-encoded."""
    return urllib.parse.urljoin(as_url(base).rstrip("/") + "/", urllib.parse.quote(name))


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch `url` (http(s)://, file:// or a local path) into `dest` atomically, verifying `sha256` when given."""
    url, dest = as_url(url), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    by_hand = f"download it yourself from {url} and put it at {dest}"
    log.info("Downloading %s -> %s", url, dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise LyricgenError(f"could not download the corpus ({reason}); {by_hand}") from None
        if sha256 is not None:
            got = sha256_file(tmp)
            if got != sha256:
                raise LyricgenError(f"the file downloaded from {url} has sha256 {got}, expected {sha256}; {by_hand}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def ensure_file(path: str | os.PathLike, url: str | None = None, sha256: str | None = None) -> Path:
    """Return `path`, downloading it first if it is missing; a present file must match `sha256`."""
    path = Path(path)
    if path.is_file():
        if sha256 is not None and (got := sha256_file(path)) != sha256:
            hint = f"replace it with the file from {url}" if url else "replace it with the right file"
            raise LyricgenError(f"{path} has sha256 {got}, expected {sha256}; delete it or {hint}")
        return path
    if path.exists():
        raise LyricgenError(f"corpus path {path} is not a file")
    if url is None:
        raise LyricgenError(f"corpus path {path} does not exist; {WHAT_PATH_TAKES}")
    return download(url, path, sha256)


def ensure_files(folder: str | os.PathLike, base_url: str | None, files: Mapping[str, str]) -> Path:
    """A corpus of several files (`files`: name -> sha256) in `folder`: each missing one downloaded from
    `base_url` + name, each present one checked like `ensure_file`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LyricgenError(f"corpus path {folder} is not a folder; delete it or set data.path to a folder")
    for name, sha256 in files.items():
        ensure_file(folder / name, file_url(base_url, name) if base_url else None, sha256)
    return folder


def _decode(raw: bytes, encoding: str, where: str) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") and not encoding.lower().replace("-", "").startswith("utf16"):
        raise LyricgenError(
            f"{where} is UTF-16 text (it starts with a UTF-16 byte-order mark); give data.encoding=utf-16"
        )
    if b"\x00" in raw and not encoding.lower().replace("-", "").startswith(("utf16", "utf32")):
        raise LyricgenError(f"{where} looks like binary data, not text; give a plain-text corpus")
    try:
        return raw.decode(encoding)
    except LookupError:
        raise LyricgenError(f"unknown encoding {encoding!r}; set data.encoding to e.g. utf-8 or gbk") from None
    except UnicodeDecodeError as e:
        raise LyricgenError(
            f"{where} is not valid {encoding} text (byte {e.start}); set data.encoding to its encoding, "
            "e.g. data.encoding=gbk"
        ) from None


def _raw_files(path: str | os.PathLike, member: str | None, format: str = "text") -> list[tuple[bytes, str]]:
    """The bytes of each file of a corpus, with the name to show in errors."""
    path = Path(path)
    if not path.exists():
        raise LyricgenError(f"corpus path {path} does not exist; {WHAT_PATH_TAKES}")
    if format == "songci":
        files = sorted((p for p in path.glob("*.json") if p.is_file()), key=_natural_key) if path.is_dir() else []
        if not files:
            raise LyricgenError(
                f"{path} is not a folder of chinese-poetry JSON files (data.format=songci); give the folder of "
                "ci.song.*.json, e.g. data=songci, which downloads them"
            )
        return [(p.read_bytes(), str(p)) for p in files]
    if format == "lyrics_zh":
        missing = [name for name in LYRICS_ZH_FILES if not (path / name).is_file()]
        if missing:
            raise LyricgenError(
                f"{path} is not lyrics_zh's folder (it lacks {', '.join(missing)}); give the folder of "
                f"{', '.join(LYRICS_ZH_FILES)}, e.g. data=lyrics_zh, which downloads them"
            )
        return [((path / name).read_bytes(), str(path / name)) for name in LYRICS_ZH_FILES]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".txt" and p.is_file())
        if not files:
            raise LyricgenError(f"folder {path} has no .txt files; put one song per .txt file in it")
        return [(p.read_bytes(), str(p)) for p in files]
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                name = member or (names[0] if len(names) == 1 else None)
                if name not in names:
                    raise LyricgenError(f"{path} has no member {member!r}; it holds {names[:5]}")
                return [(zf.read(name), f"{path}:{name}")]
        except zipfile.BadZipFile:
            raise LyricgenError(f"{path} is not a valid zip file; delete it so that it is downloaded again") from None
    return [(path.read_bytes(), str(path))]


def _digest(
    raws: list[tuple[bytes, str]],
    encoding: str,
    blank_lines: bool,
    format: str = "text",
    exclude: Mapping | None = None,
) -> str:
    settings = f"{encoding.lower()}, blank lines {'kept' if blank_lines else 'dropped'}"
    if format != "text":  # (text corpora keep the digests, and so the token caches, of earlier versions)
        settings += f", format {format}"
    if format == "lyrics_zh":  # the cleaning, and the corpus whose lines it drops
        settings += f", cleaning {CLEANING_VERSION}, excluded {sha256_file(exclude['path']) if exclude else None}"
    digest = hashlib.sha256(settings.encode())
    for raw, _ in raws:
        digest.update(hashlib.sha256(raw).digest())
    return digest.hexdigest()


def corpus_digest(
    path: str | os.PathLike,
    encoding: str = "utf-8",
    member: str | None = None,
    blank_lines: bool = False,
    format: str = "text",
    exclude: Mapping | None = None,
) -> str:
    """The sha256 that identifies a corpus as `read_songs` reads it, from its bytes alone (no decoding):
    what a token cache is looked up by before any text is read."""
    return _digest(_raw_files(path, member, format), encoding, blank_lines, format, exclude)


def _songci(text: str, where: str) -> list[Song]:
    """The ci of one chinese-poetry JSON file: each a title line with its tune, then its paragraphs."""
    try:
        records = json.loads(text)
        songs = [[title_line(r["rhythmic"].strip()), *(p.strip() for p in r["paragraphs"])] for r in records]
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as e:
        raise LyricgenError(
            f"{where} is not a chinese-poetry JSON file (a list of records with rhythmic and paragraphs: "
            f"{type(e).__name__} {e}); delete it so that it is downloaded again"
        ) from None
    return [[line for line in song if line] for song in songs if any(p.strip() for p in song[1:])]


def read_songs(
    path: str | os.PathLike,
    encoding: str = "utf-8",
    member: str | None = None,
    blank_lines: bool = False,
    format: str = "text",
    exclude: Mapping | None = None,
) -> tuple[list[Song], str]:
    """Read a corpus as songs of lines, plus a sha256 that identifies them (`corpus_digest`).

    A `.zip` file yields its `member` (or its only member) as one song; a text file is one song; a
    folder yields one song per `.txt` file, in sorted order. Blank lines are dropped, unless
    `blank_lines` (prose and plays, where an empty line separates speeches): then they are kept as empty
    lines, except at the start and the end of a file.
    """
    raws = _raw_files(path, member, format)
    if format == "lyrics_zh":
        return [_lyrics_zh(raws, encoding, exclude)], _digest(raws, encoding, blank_lines, format, exclude)
    songs = []
    for raw, where in raws:
        text = _decode(raw, encoding, where)
        if format == "songci":
            songs += _songci(text, where)
            continue
        if blank_lines:
            lines = [line if line.strip() else "" for line in text.strip("\r\n").splitlines()]
        else:
            lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            songs.append(lines)
    if not songs:
        raise LyricgenError(f"corpus {path} is empty (no non-blank lines); give a file with lyrics in it")
    return songs, _digest(raws, encoding, blank_lines, format)


def _lyrics_zh(raws: list[tuple[bytes, str]], encoding: str, exclude: Mapping | None) -> Song:
    """lyrics_zh's three files as one text, cleaned (`lyricgen.data.cleaning`), the lines of the `exclude` corpus
    (a text corpus: path, member) dropped; the counts logged."""
    lines = [line for raw, where in raws for line in _decode(raw, encoding, where).splitlines()]
    excluded = []
    if exclude:
        excluded = [line for song in read_songs(exclude["path"], member=exclude.get("member"))[0] for line in song]
    kept, counts = clean_lyrics_zh(lines, excluded)
    log.info("lyrics_zh cleaned: %s", counts.summary())
    if not kept:
        raise LyricgenError(
            f"lyrics_zh in {raws[0][1]} has no line left after cleaning; delete it to download it again"
        )
    return kept
