"""Rhyme classes checked by hand against 十三辙 tables and pinyin."""

import pytest

from lyricgen.prosody import class_names, final_of, rhyme_class

HAND_CHECKED = {  # character or word -> 十三辙 class
    "光": "江阳",
    "伤": "江阳",
    "江": "江阳",
    "想": "江阳",
    "飞": "灰堆",
    "回": "灰堆",
    "泪": "灰堆",
    "谁": "灰堆",
    "你": "一七",
    "去": "一七",
    "起": "一七",
    "雨": "一七",
    "日": "一七",
    "花": "发花",
    "家": "发花",
    "发": "发花",
    "他": "发花",
    "我": "梭波",
    "多": "梭波",
    "着": "梭波",
    "歌": "梭波",
    "雪": "乜斜",
    "夜": "乜斜",
    "月": "乜斜",
    "苦": "姑苏",
    "路": "姑苏",
    "爱": "怀来",
    "来": "怀来",
    "快": "怀来",
    "笑": "遥条",
    "好": "遥条",
    "了解": "乜斜",
    "手": "由求",
    "久": "由求",
    "走": "由求",
    "天": "言前",
    "远": "言前",
    "晚": "言前",
    "人": "人辰",
    "心": "人辰",
    "云": "人辰",
    "春": "人辰",
    "风": "中东",
    "梦": "中东",
    "星": "中东",
    "穷": "中东",
}


@pytest.mark.parametrize("word,name", sorted(HAND_CHECKED.items()))
def test_shisan_classes_of_hand_checked_characters(word, name):
    assert rhyme_class(word) == name


def test_every_final_belongs_to_exactly_one_class():
    finals = class_names("strict")
    assert len(finals) == len(set(finals)) and len(class_names("shisan")) == 13


def test_polyphones_are_resolved_by_the_whole_word():
    assert final_of("银行") == "ang" and rhyme_class("银行") == "江阳"  # háng
    assert final_of("行") == "ing" and rhyme_class("行") == "中东"  # xíng alone
    assert rhyme_class("快乐") == "梭波" and rhyme_class("音乐") == "乜斜"  # lè / yuè


def test_strict_and_loose_rules():
    assert rhyme_class("光", "strict") == "uang" and rhyme_class("伤", "strict") == "ang"  # one 江阳, two finals
    assert rhyme_class("人") != rhyme_class("风")  # 人辰 and 中东 ...
    assert (
        rhyme_class("人", "loose")
        == rhyme_class("风", "loose")
        == rhyme_class("心", "loose")
        == rhyme_class("星", "loose")
    )
    assert rhyme_class("光", "loose") == "江阳"


def test_words_without_a_chinese_ending_have_no_class():
    assert rhyme_class("baby") is None and rhyme_class("") is None and rhyme_class("嗯") is None
    assert rhyme_class("oh我") == "梭波"
