"""What a reader of a line counts and hears: its characters (`count_chars`) and the rhyme classes of Chinese
words, below decoding, metrics, the critic and the page, which all read lines so.

Rhyme classes: 十三辙 (the 13 rhyme classes of Chinese song), exact finals, or loose.

A word's rhyme is that of its last character. The final comes from pypinyin run on the whole word, so
that its phrase dictionary settles polyphones (银行 ends in háng, 行走 begins with xíng).

- `shisan`: the 13 classes of 十三辙 (发花 梭波 乜斜 一七 姑苏 怀来 灰堆 遥条 由求 言前 人辰 江阳 中东);
- `strict`: the same pinyin final (ang, iang and uang are three classes);
- `loose`: 十三辙 with en/eng and in/ing merged (人辰 and 中东 become one class), as rap writers rhyme.
"""

from __future__ import annotations

from functools import cache

RHYME_RULES = ("shisan", "strict", "loose")


def count_chars(text: str) -> int:
    """Characters that count for `line_chars`: letters, digits and CJK characters (no spaces or punctuation)."""
    return sum(ch.isalnum() for ch in text)


# pypinyin finals (Style.FINALS, strict: ü written v, uei/uen/iou in full) -> 十三辙
SHISAN: dict[str, tuple[str, ...]] = {
    "发花": ("a", "ia", "ua"),
    "梭波": ("o", "e", "uo"),
    "乜斜": ("ie", "ve", "ê"),
    "一七": ("i", "v", "er"),
    "姑苏": ("u",),
    "怀来": ("ai", "uai"),
    "灰堆": ("ei", "uei"),
    "遥条": ("ao", "iao"),
    "由求": ("ou", "iou"),
    "言前": ("an", "ian", "uan", "van"),
    "人辰": ("en", "in", "uen", "vn"),
    "江阳": ("ang", "iang", "uang"),
    "中东": ("eng", "ing", "ong", "iong", "ueng"),
}
_SHISAN_OF = {final: name for name, finals in SHISAN.items() for final in finals}
LOOSE_MERGED = "人辰中东"


def class_names(rule: str) -> list[str]:
    """Every class of a rule, in a fixed order."""
    check_rule(rule)
    if rule == "shisan":
        return list(SHISAN)
    if rule == "loose":
        return [n for n in SHISAN if n not in ("人辰", "中东")] + [LOOSE_MERGED]
    return [final for finals in SHISAN.values() for final in finals]


def check_rule(rule: str) -> None:
    if rule not in RHYME_RULES:
        from lyricgen.errors import LyricgenError

        raise LyricgenError(f"rhyme_rule must be one of {', '.join(RHYME_RULES)}, got {rule!r}")


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@cache
def final_of(word: str) -> str | None:
    """The pinyin final of the word's last character (None if it does not end in a Chinese character)."""
    if not word or not _is_han(word[-1]):
        return None
    from pypinyin import Style, lazy_pinyin  # imported here: only form decoding and the critic need it

    han = "".join(ch for ch in word if _is_han(ch))  # the phrase context, without letters or digits
    final = lazy_pinyin(han, style=Style.FINALS, strict=True)[-1]
    return final if final in _SHISAN_OF else None


def rhyme_class(word: str, rule: str = "shisan") -> str | None:
    """The rhyme class of a word under `rule` (a 十三辙 name, or a final for `strict`); None if it has none."""
    final = final_of(word)
    if final is None:
        return None
    if rule == "strict":
        return final
    name = _SHISAN_OF[final]
    if rule == "loose" and name in ("人辰", "中东"):
        return LOOSE_MERGED
    return name
