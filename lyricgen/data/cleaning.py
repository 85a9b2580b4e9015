"""lyrics_zh as a reader would want it (`format: lyrics_zh`, conf/data/lyrics_zh.yaml).

The corpus that a Tsinghua student project prepared for PyTorch's word_language_model example: Mandarin pop
lyrics, a lyric line per line, words separated by spaces (a segmentation of its own: `为什 么`), rare words
replaced by `<unk>`, credits among the lyrics. Each line is cleaned in turn:

1. the spaces between words go (a space is kept only between two Latin letters or digits, as in `I love you`);
   jieba segments the text again;
2. a line holding `<unk>` is dropped: its text is lost, and a model should not learn to write `<unk>`;
3. a credit line is dropped: its first word names a role (演唱 毛宁, 词 李宗盛, 制作人 ..., 专辑 ...);
4. a line that occurs anywhere in the excluded corpus (the Jay Chou corpus, its spaces ignored) is dropped,
   so that nothing of Jay Chou's validation or test lines is pre-trained on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

CLEANING_VERSION = 1  # in the corpus digest: a change of the rules makes new token caches
UNK_MARK = "<unk>"
# The roles that open a credit line in lyrics_zh (its first word). Not 唱 or 鼓: they open lyrics (唱 出 我 的 爱,
# 鼓 起 勇气) far more often than credits.
CREDIT_ROLES = frozenset(
    "演唱 原唱 作词 作曲 词曲 编曲 词 曲 制作 制作人 监制 混音 缩混 和声 录音 吉他 贝斯 弦乐 键盘 母带 出品 发行 "
    "策划 歌手 专辑".split()
)
_LATIN = re.compile(r"[A-Za-z0-9]")


@dataclass
class CleaningCounts:
    """What cleaning did to each line: how many were read, kept, and dropped for each reason."""

    read: int = 0
    unk: int = 0
    credits: int = 0
    excluded: int = 0
    kept: int = 0
    examples: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.read:,} lines read; dropped {self.unk:,} holding <unk>, {self.credits:,} credit lines, "
            f"{self.excluded:,} lines of the excluded corpus; {self.kept:,} kept"
        )


def join_words(line: str) -> str:
    """A line of space-separated words as written text: the spaces go, except between two Latin letters or
    digits (`I love you`)."""
    words = line.split()
    out = words[:1]
    for word in words[1:]:
        if _LATIN.match(word[:1]) and _LATIN.match(out[-1][-1:]):
            out.append(" ")
        out.append(word)
    return "".join(out)


def squashed(line: str) -> str:
    """A line with every space removed: how lines of two corpora with other spacing are compared."""
    return "".join(line.split())


def clean_lyrics_zh(lines: Iterable[str], excluded: Iterable[str] = ()) -> tuple[list[str], CleaningCounts]:
    """The lines of lyrics_zh kept (see the module's docstring), and the counts."""
    banned = {squashed(line) for line in excluded}
    banned.discard("")
    counts = CleaningCounts()
    kept = []
    for raw in lines:
        if not raw.strip():
            continue
        counts.read += 1
        words = raw.split()
        if UNK_MARK in words:
            counts.unk += 1
        elif words[0] in CREDIT_ROLES:
            counts.credits += 1
            counts.examples.setdefault("credit", raw.strip())
        elif squashed(raw) in banned:
            counts.excluded += 1
            counts.examples.setdefault("excluded", raw.strip())
        else:
            kept.append(join_words(raw))
    counts.kept = len(kept)
    return kept, counts
