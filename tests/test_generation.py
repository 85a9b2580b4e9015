"""Decoding from a model trained on the tiny corpus, through the library and the real script."""

import pytest

from lyricgen.checkpoint import find_checkpoint
from lyricgen.decoding import DecodingOptions
from lyricgen.decoding.sampling import decode
from lyricgen.errors import LyricgenError
from lyricgen.generation import LyricsGenerator
from tests.conftest import TINY_LINES, assert_user_error, best_checkpoint, run_script


@pytest.fixture(scope="module")
def gen(trained_run):
    return LyricsGenerator.from_checkpoint(best_checkpoint(trained_run))


def squash(text: str) -> str:
    return text.replace(" ", "")


def test_greedy_continues_a_learnt_line_exactly(gen):
    text = gen.generate("星星", strategy="greedy", lines=3)[0]
    lines = [squash(line) for line in text.split("\n")]
    learnt = [squash(line) for line in TINY_LINES]
    assert lines == learnt[:3]


def test_greedy_is_deterministic_and_top_k_1_is_greedy(gen):
    greedy = gen.generate("月亮", strategy="greedy", length=40)
    assert gen.generate("月亮", strategy="greedy", length=40) == greedy
    assert gen.generate("月亮", strategy="sample", top_k=1, temperature=2.0, length=40, seed=3) == greedy


def test_seed_makes_sampling_reproducible(gen):
    a = gen.generate("月亮", temperature=3.0, length=40, seed=1, num_samples=2)
    assert gen.generate("月亮", temperature=3.0, length=40, seed=1, num_samples=2) == a
    assert gen.generate("月亮", temperature=3.0, length=40, seed=2, num_samples=2) != a
    assert a[0] != a[1]  # samples of one batch differ from each other


def test_length_and_lines_are_respected(gen):
    prompt = gen.encode_prompt("星星")
    newline = gen.vocab.stoi["\n"]
    (ids,) = decode(gen.net, prompt, DecodingOptions(length=17, temperature=2.0), newline_id=newline)
    assert len(ids) == 17
    samples = decode(
        gen.net, prompt, DecodingOptions(length=None, lines=5, num_samples=3, temperature=2.0), newline_id=newline
    )
    for ids in samples:
        assert ids.count(newline) == 5 and ids[-1] == newline
    assert len(gen.generate("", lines=2, strategy="greedy")[0].split("\n")) == 2


def test_phrase_prompt_is_segmented_and_warms_the_state(gen):
    text = gen.generate("月亮照着", strategy="greedy", lines=1)[0]
    assert squash(text) == squash(TINY_LINES[2])  # the phrase continues as the learnt line


def test_unknown_word_and_bad_options(gen):
    with pytest.raises(LyricgenError, match="'太阳' is not in the model's vocabulary"):
        gen.generate("太阳")
    for bad in ({"temperature": 0}, {"top_p": 1.5}, {"top_p": 0}, {"top_k": -1}, {"length": -1}):
        with pytest.raises(LyricgenError):
            gen.generate("星星", **bad)


def test_script_prints_only_lyrics_and_finds_the_newest_run(trained_run):
    runs_dir = trained_run.parents[1]
    assert find_checkpoint(runs_dir) == best_checkpoint(trained_run)
    result = run_script(
        "generate", "start_word=星星", "strategy=greedy", "lines=2", "num_samples=2", f"runs_dir={runs_dir}"
    )
    assert result.returncode == 0, result.stderr
    assert str(best_checkpoint(trained_run)) in result.stderr  # which checkpoint: on stderr
    samples = result.stdout.rstrip("\n").split("\n\n")
    assert len(samples) == 2 and samples[0] == samples[1]
    assert [squash(line) for line in samples[0].split("\n")] == [squash(line) for line in TINY_LINES[:2]]


def test_script_refuses_an_unknown_word_with_similar_words(trained_run):
    result = run_script("generate", "start_word=星空", f"ckpt_path={best_checkpoint(trained_run)}")
    assert_user_error(result, "error: start_word '星空' is not in", "星星")
    assert result.stdout == ""


@pytest.mark.parametrize("option", ["temperature=0", "top_p=1.5", "top_k=-1", "length=-3", "strategy=beam"])
def test_script_refuses_bad_values_before_loading(option, tmp_path):
    # The checkpoint does not exist: the option error must come first, before any loading.
    result = run_script("generate", option, f"ckpt_path={tmp_path / 'missing.ckpt'}")
    assert_user_error(result, option.split("=")[0])
    assert len(result.stderr.strip().splitlines()) == 1


def truncated_reference(probs: list[float], top_k: int, top_p: float) -> list[float]:
    """Top-k (ties with the k-th word in), then the nucleus, by sorting: the distribution a draw must follow."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept = set(order)
    if top_k:
        kth = probs[order[top_k - 1]]
        kept = {i for i in kept if probs[i] >= kth}
    total, running, nucleus = sum(probs[i] for i in kept), 0.0, set()
    for i in [i for i in order if i in kept]:
        if running < top_p * total - 1e-12:
            nucleus.add(i)
            running += probs[i]
    edge = min(probs[i] for i in nucleus)
    nucleus |= {i for i in kept if probs[i] == edge}  # a tie at the edge: both words are in
    mass = sum(probs[i] for i in nucleus)
    return [probs[i] / mass if i in nucleus else 0.0 for i in range(len(probs))]


@pytest.mark.parametrize(
    "probs, top_k, top_p",
    [
        ([0.5, 0.2, 0.15, 0.1, 0.05], 0, 0.8),  # nucleus {0, 1, 2}
        ([0.4, 0.3, 0.3], 0, 0.5),  # a tie at the edge: both 0.3 words are in
        ([0.9, 0.05, 0.03, 0.02], 0, 0.5),  # the likeliest word alone
        ([0.5, 0.2, 0.15, 0.1, 0.05], 2, 1.0),  # top-2
        ([0.4, 0.3, 0.3, 0.0], 2, 1.0),  # a tie at the k-th word: both are in
        ([0.04, 0.02, 0.01] + [0.93 / 93] * 93, 3, 1.0),  # 7% of the mass in the top 3
        ([0.5, 0.2, 0.15, 0.1, 0.05], 3, 0.7),  # top-3, then the nucleus of those three: {0, 1}
        ([0.0, 0.3, 0.0, 0.45, 0.25], 0, 0.7),  # a masked row (zeros: words a form's rules forbid): {3, 1}
    ],
)
@pytest.mark.parametrize("rows", [1, 2])
def test_truncated_draws_follow_the_truncated_distribution(probs, top_k, top_p, rows):
    import torch

    from lyricgen.decoding.sampling import Truncation

    expected = torch.tensor(truncated_reference(probs, top_k, top_p))
    truncation = Truncation(top_k, top_p)
    weights = torch.tensor([probs, probs[::-1]][:rows]) * 3  # unnormalised; one row (the scalar path) or two
    kept = truncation.keep(weights.clone())  # the definition, by masking
    assert torch.allclose(kept[0] / kept[0].sum(), expected, atol=1e-6)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([truncation.draw(weights.clone(), g) for _ in range(20000)])  # (draws, rows)
    for row in range(rows):
        want = expected if row == 0 else expected.flip(0)
        freq = torch.bincount(draws[:, row], minlength=len(probs)).float() / len(draws)
        assert torch.all(freq[want == 0] == 0)  # never outside the truncated set
        assert torch.allclose(freq, want, atol=0.012), (freq, want)
