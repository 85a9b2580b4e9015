"""Each rule of form decoding on its own, on a vocabulary of 10 words; the scalar and tensor methods agree; the
unbranched start of a line draws what the tensor loop draws for the same seed."""

from __future__ import annotations

import itertools

import pytest
import torch

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.tokenizer import NEWLINE, SPACE
from lyricgen.data.vocab import Vocab
from lyricgen.decoding.form import FormDecoder
from lyricgen.decoding.line import LineDecoder
from lyricgen.decoding.options import DecodingOptions
from lyricgen.decoding.plan import FormPlan, LineSpec
from lyricgen.decoding.rules import (
    Acrostic,
    FreshEndings,
    LineBudget,
    LineState,
    NoCopy,
    Rhyme,
    RowState,
    Spacing,
)
from lyricgen.decoding.sampling import RepetitionPenalty, Sampler, Truncation
from lyricgen.decoding.tables import WordTables
from lyricgen.generation import LyricsGenerator
from tests.conftest import best_checkpoint

# 我 梭波, 光 and 月亮 江阳, 飞 灰堆, 家 发花, 星星 中东, 回忆 一七; 月亮, 星星 and 回忆 count 2 characters
WORDS = ["<unk>", NEWLINE, SPACE, "我", "光", "月亮", "飞", "家", "星星", "回忆"]
VOCAB = Vocab(WORDS)
ID = VOCAB.stoi
T = WordTables(VOCAB, "shisan")
END = ID[NEWLINE]


def words(mask: torch.Tensor) -> set[str]:
    return {WORDS[i] for i in mask.reshape(-1).nonzero().flatten().tolist()}


def state(chars: int, last: str | None = None, after_space: bool = False, rows: int = 1) -> LineState:
    s = LineState.start(rows, [], T, torch.device("cpu"))
    s.chars[:] = chars
    s.last_word[:] = ID[last] if last else -1
    s.after_space[:] = after_space
    return s


def jiangyang() -> torch.Tensor:
    """The words of the 江阳 class, as a line's endings (1 x vocab)."""
    return (T.cls == T.names.index("江阳"))[None, :]


def test_the_budget_lets_in_only_what_still_fits_the_length_and_the_ending():
    spec = LineSpec(lo=3, hi=3, acrostic=None, group=0, keywords=[])
    budget = LineBudget(spec, T, jiangyang(), torch.tensor([1]), END)
    everything = {"我", "光", "月亮", "飞", "家", "星星", "回忆"}
    assert words(budget.allowed(state(0))) == everything | {SPACE}  # each word leaves room (spaces: `Spacing`)
    # two characters used: only a 江阳 word of one character ends the line exactly
    assert words(budget.allowed(state(2, "星星"))) == {"光", SPACE}
    assert words(budget.allowed(state(3, "光"))) == {NEWLINE}  # full, on the class: the line may end
    assert words(budget.allowed(state(3, "我"))) == set()  # full on another class: a dead end (never reached)
    assert words(budget.allowed(state(1, "我"))) == {"光", "月亮", "飞", "家", "我", SPACE}  # one left after each


def test_the_budget_keeps_room_for_the_keywords():
    spec = LineSpec(lo=3, hi=3, acrostic=None, group=0, keywords=[ID["回忆"]])
    budget = LineBudget(spec, T, jiangyang(), torch.tensor([1]), END, torch.tensor([ID["回忆"]]))
    s = state(0)
    budget.start(s, torch.zeros(1, len(WORDS), dtype=torch.bool))
    assert words(budget.allowed(s)) == {"回忆", SPACE}  # room for 回忆 and a 1-character ending only
    budget.advance(s, torch.tensor([ID["回忆"]]), torch.tensor([True]))
    s.chars += 2
    assert words(budget.allowed(s)) == {"光", SPACE}
    placed = state(0)
    budget.start(placed, torch.tensor([[w == "回忆" for w in WORDS]]))  # written on an earlier line
    assert "我" in words(budget.allowed(placed))


def test_rhyme_takes_the_groups_class_and_a_new_letter_a_new_class():
    opts = DecodingOptions(rhyme="AB", line_chars=1)
    plan = FormPlan(opts, T, VOCAB, [])
    a, b = plan.lines
    free = Rhyme(plan, a, torch.tensor([[-1, -1]]))
    assert {T.names[c] for c in free.classes[0].nonzero().flatten().tolist()} == {"梭波", "江阳", "灰堆", "发花"}
    jy = T.names.index("江阳")
    assert words(Rhyme(plan, a, torch.tensor([[jy, -1]])).ends()) == {"光", "月亮"}  # the class A took
    assert "光" not in words(Rhyme(plan, b, torch.tensor([[jy, -1]])).ends())  # B: another class than A's
    assert Rhyme(plan, LineSpec(1, 5, None, None, []), torch.tensor([[-1, -1]])).ends().all()  # a free line


def test_fresh_endings_leave_out_the_groups_earlier_endings():
    ended = torch.tensor([[w == "光" for w in WORDS]])
    assert words(FreshEndings(ended).ends(jiangyang())) == {"月亮"}
    assert words(FreshEndings(None).ends(jiangyang())) == {"光", "月亮"}  # a retried line may repeat one


def test_acrostic_applies_to_the_first_word_only():
    rule = Acrostic(T.starting_with("月"))
    allowed = torch.ones(1, len(WORDS), dtype=torch.bool)
    rule.mask(state(0), allowed)
    assert words(allowed) == {"月亮"}
    later, allowed = state(2, "月亮"), torch.ones(1, len(WORDS), dtype=torch.bool)
    later.written = 1
    rule.mask(later, allowed)
    assert allowed.all()


@pytest.mark.parametrize("chars,after_space,free", [(0, False, False), (2, True, False), (2, False, True)])
def test_spacing_keeps_spaces_and_line_ends_after_a_word(chars, after_space, free):
    allowed = torch.ones(1, len(WORDS), dtype=torch.bool)
    Spacing(T, END).mask(state(chars, "星星" if chars else None, after_space), allowed)
    assert bool(allowed[0, ID[SPACE]]) == bool(allowed[0, END]) == free
    assert allowed[0, ID["我"]]


def test_no_copy_masks_the_word_that_completes_a_training_run():
    rule = NoCopy(NgramIndex.build([[ID["我"], ID["光"], ID["飞"]]], max_n=4), 3)

    def blocked(s: LineState) -> set[str]:
        allowed = torch.ones(1, len(WORDS), dtype=torch.bool)
        rule.mask(s, allowed)
        return words(~allowed)

    s = state(0)
    rule.start(s, [ID["我"]])
    assert blocked(s) == set()  # one word of context: no run of 3 ends yet
    rule.advance(s, torch.tensor([ID["光"]]), torch.tensor([True]))
    assert blocked(s) == {"飞"}  # 我 光 飞 is a run of the training text
    rule.advance(s, torch.tensor([ID[SPACE]]), torch.tensor([False]))  # a space is no word: the run goes on
    assert blocked(s) == {"飞"}
    rule.advance(s, torch.tensor([ID["家"]]), torch.tensor([True]))
    assert blocked(s) == set() and s.context.tolist() == [[ID["光"], ID["家"]]]


def test_repetition_penalty_lowers_used_words_and_spares_line_breaks():
    penalty = RepetitionPenalty(2.0, [END])
    logits = torch.tensor([[0.0, 1.0, 0.5, 2.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    seen = torch.zeros(1, len(WORDS), dtype=torch.bool)
    penalty.mark(seen, torch.tensor([ID["我"]]))
    penalty.mark(seen, torch.tensor([ID["光"]]))
    penalty.mark(seen, torch.tensor([END]))
    out = penalty(logits, seen)
    assert out[0, ID["我"]] == 1.0 and out[0, ID["光"]] == -2.0 and out[0, END] == 1.0  # /2, x2, exempt
    assert torch.equal(out[0, 5:], logits[0, 5:])


def test_truncation_keeps_top_k_then_the_nucleus():
    weights = torch.tensor([[0.0, 0.0, 0.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0]])
    assert words(Truncation(top_k=2).keep(weights) > 0) == {"我", "光"}
    assert words(Truncation(top_p=0.7).keep(weights) > 0) == {"我", "光"}  # 4 + 3 of 10 reach 0.7
    assert words(Truncation(top_k=3, top_p=0.5).keep(weights) > 0) == {"我", "光"}  # 4 of 9 < 0.5


def test_a_masked_pick_never_picks_a_masked_word_and_says_the_mass_left():
    sampler = Sampler(DecodingOptions(temperature=1.0, top_p=0.9), torch.Generator().manual_seed(0))
    logits = torch.zeros(2, len(WORDS))
    allowed = torch.zeros(2, len(WORDS), dtype=torch.bool)
    allowed[:, [ID["光"], ID["月亮"]]] = True
    for _ in range(50):
        token, log_mass = sampler.pick_masked(logits, allowed)
        assert set(token.tolist()) <= {ID["光"], ID["月亮"]}
    assert torch.allclose(log_mass, torch.log(torch.tensor(0.2)))  # 2 of 10 equally likely words


RULES = [
    Acrostic(T.starting_with("月")),
    Spacing(T, END),
    NoCopy(NgramIndex.build([[ID["我"], ID["光"]], [ID["星星"], ID["家"]]], max_n=4), 2),
]


@pytest.mark.parametrize(
    "chars,last,after_space,written",
    [(0, None, False, 0), (1, "我", False, 1), (2, "星星", True, 2), (3, "光", False, 1)],
)
def test_the_scalar_and_the_tensor_methods_of_each_rule_agree(chars, last, after_space, written):
    spec = LineSpec(lo=3, hi=3, acrostic="月", group=0, keywords=[])
    budget = LineBudget(spec, T, jiangyang(), torch.tensor([1]), END)
    s = state(chars, last, after_space)
    s.written = written
    RULES[2].start(s, [ID[last]] if last else [])
    row = RowState(0, chars, ID[last] if last else -1, after_space, [ID[last]] if last else [], written)
    tensor, scalar = budget.allowed(s), budget.allowed_row(row)
    assert torch.equal(tensor[0], scalar)
    for rule in RULES:
        rule.mask(s, tensor)
        rule.mask_row(row, scalar)
        assert torch.equal(tensor[0], scalar), type(rule).__name__


@pytest.fixture(scope="module")
def gen(trained_run):
    return LyricsGenerator.from_checkpoint(best_checkpoint(trained_run))


@pytest.mark.parametrize(
    "options",
    [
        {"rhyme": "AABB", "line_chars": 6, "temperature": 1.3, "top_p": 0.9},
        {"acrostic": "星我月风", "rhyme": "XAXA", "line_chars": 7, "no_copy": 3, "top_k": 5},
    ],
)
def test_the_unbranched_start_draws_what_the_tensor_loop_draws(gen, options, monkeypatch):
    opts = DecodingOptions(**options).check()
    started = []
    real = LineDecoder._start_unbranched

    def spy(self):
        position, branch_now = real(self)
        started.append(position)
        return position, branch_now

    monkeypatch.setattr(LineDecoder, "_start_unbranched", spy)
    for seed in range(4):
        lyrics = []
        for fast in (True, False):
            decoder = FormDecoder(
                gen.net, gen.vocab, gen.word_tables("shisan"), opts, gen.ngrams, torch.Generator().manual_seed(seed)
            )
            decoder.fast = fast
            lyrics.append(decoder.decode([]))
        assert lyrics[0] == lyrics[1], seed
    assert len(started) == 4 * 4 and any(started)  # every line started unbranched, most with words drawn


def test_every_combination_of_rules_meets_the_budget(gen):
    # the rules compose: acrostic, keywords, no_copy and rhyme at once still give lines of the length asked
    for acrostic, no_copy in itertools.product(["星我", None], [0, 3]):
        opts = DecodingOptions(rhyme="AA", line_chars=6, acrostic=acrostic, keywords=["安静"], no_copy=no_copy)
        text = gen.generate("", seed=0, opts=opts.check())[0]
        assert [len(line.replace(" ", "")) for line in text.split("\n")] == [6, 6], text
