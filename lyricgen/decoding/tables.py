"""Per-word facts of a vocabulary for form decoding (`lyricgen.decoding.form`), as tensors for masking:
the characters each word counts (`lyricgen.prosody.count_chars`), its first character, its rhyme class, and
for each class its shortest word. With them, "can this line still end on the right class within its
length?" is one comparison per word."""

from __future__ import annotations

import torch

from lyricgen.data.tokenizer import NEWLINE, SPACE
from lyricgen.data.vocab import Vocab
from lyricgen.prosody import class_names, count_chars, rhyme_class

BIG = 10_000
RICH_CLASS = 20  # a class with this many words has enough for every line of a group to end on a new one


class WordTables:
    """Per-word facts of a vocabulary for one rhyme rule, as tensors for masking."""

    def __init__(self, vocab: Vocab, rule: str, device: torch.device | str = "cpu") -> None:
        self.rule = rule
        self.names = class_names(rule)
        self.none = len(self.names)  # the column of words that end in no rhyme class
        index = {n: i for i, n in enumerate(self.names)}
        words = vocab.itos
        chars = [count_chars(w) for w in words]
        classes = [index[c] if (c := rhyme_class(w, rule)) is not None else self.none for w in words]
        self.first = [next((ch for ch in w if ch.isalnum()), "") for w in words]
        self._starting: dict[str, torch.Tensor] = {}
        self.newline = vocab.stoi.get(NEWLINE, -1)
        self.space = vocab.stoi.get(SPACE, -1)
        self.chars = torch.tensor(chars, dtype=torch.long, device=device)
        self.cls = torch.tensor(classes, dtype=torch.long, device=device)
        self.chars_list, self.cls_list = chars, classes  # the same, for the unbranched start of a line
        ok = self.chars > 0
        ok[vocab.unk_id] = False  # never <unk>; line breaks, spaces and punctuation are handled apart
        # In a vocabulary of mostly Chinese words (jieba, char), a line of N characters is N Chinese characters,
        # as a reader counts them: words with Latin letters (`Na`, `OK`) are not drawn in form decoding.
        latin = [any("a" <= ch.lower() <= "z" for ch in w) and not (w[:1] == "<" and w[-1:] == ">") for w in words]
        chinese = sum(any("\u4e00" <= ch <= "\u9fff" for ch in w) for w in words)
        if chinese > sum(latin):
            ok &= ~torch.tensor(latin, dtype=torch.bool, device=device)
        self.word_ok = ok
        class_min = torch.full((self.none + 1,), BIG, dtype=torch.long, device=device)
        class_min.scatter_reduce_(0, self.cls[ok], self.chars[ok], reduce="amin")
        self.class_min = class_min
        # words of classes with many words: a rhyme group's later lines are asked not to end on them again
        sizes = torch.bincount(self.cls[ok], minlength=self.none + 1)
        self.rich = (sizes[self.cls] >= RICH_CLASS) & (self.cls != self.none)

    def class_of(self, token_id: int) -> int:
        return int(self.cls[token_id])

    def starting_with(self, ch: str) -> torch.Tensor:
        """Words that begin with character `ch` (bool over the vocabulary), made once per character."""
        if ch not in self._starting:
            self._starting[ch] = self.word_ok & torch.tensor([f == ch for f in self.first], device=self.word_ok.device)
        return self._starting[ch]
