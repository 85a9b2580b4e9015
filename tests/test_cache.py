"""The continuous cache: its probabilities by hand, the stream read in chunks, and a real gain on repeats."""

import math

import pytest
import torch
import torch.nn.functional as F

from lyricgen.cache import StreamScores, cache_evaluation, cache_probs, mixed_nll, read_stream, tune
from lyricgen.data.encoding import SplitChars
from lyricgen.rnnlm import RNNLM, NetSettings


def test_cache_probs_by_hand():
    # states 0..3; state i is followed by word y[i]; row t mixes the states before it (window 2)
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([7, 8, 7, 8])
    scores = StreamScores(torch.full((4,), 0.5), h, y)
    p = cache_probs(scores, window=2, theta=1.0, block=2)  # blocks of 2 rows: the band crosses a block edge
    assert p[0] == 0  # nothing remembered yet
    assert p[1] == 0  # the only state before it was followed by 7, the target is 8
    # t = 2 sees states 0 and 1 (dot products 1 and 0); the target 7 followed state 0
    assert p[2] == pytest.approx(math.e / (math.e + 1))
    # t = 3 sees states 1 and 2 (window 2; dot products 1 and 1); the target 8 followed state 1
    assert p[3] == pytest.approx(0.5)
    assert mixed_nll(scores, p, 0.0) == pytest.approx(-math.log(0.5))
    lam = 0.4
    expected = -sum(math.log(0.6 * 0.5 + lam * float(q)) for q in p) / 4
    assert mixed_nll(scores, p, lam) == pytest.approx(expected)


def test_read_stream_carries_the_state_across_chunks():
    torch.manual_seed(0)
    net = RNNLM(NetSettings(20, "gru", 8, 16)).eval()
    ids = torch.randint(0, 20, (50,))
    scores = read_stream(net, ids, chunk=7)
    with torch.no_grad():
        logits, _, (raw, _) = net(ids[:-1][None], return_outputs=True)
    whole = F.log_softmax(logits[0], -1).gather(1, ids[1:, None])[:, 0].exp()
    torch.testing.assert_close(scores.target_prob, whole)  # as if read in one piece
    torch.testing.assert_close(scores.hidden, raw[0])
    assert torch.equal(scores.targets, ids[1:])


def context_states(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """A state that knows the last two words (one-hot of each): what a trained network's state encodes."""
    last, before = ids[:-1], torch.cat([ids[:1], ids[:-2]])  # the state that predicts ids[t + 1]
    return torch.cat([F.one_hot(last, vocab), F.one_hot(before, vocab)], 1).float()


def test_cache_lowers_perplexity_where_text_repeats():
    torch.manual_seed(0)
    verse = torch.randint(0, 50, (60,))
    val, test = torch.cat([verse, verse, verse]), torch.cat([verse.flip(0), verse.flip(0)])

    def flat(ids):
        return StreamScores(torch.full((ids.numel() - 1,), 1 / 50), context_states(ids, 50), ids[1:])

    settings, nll = tune(flat(val), [50, 100], [0.5, 1.0, 3.0], [0.2, 0.5, 0.8])
    assert settings.window == 100 and settings.lam > 0  # a window that reaches back one verse
    assert math.exp(nll) < 0.2 * 50  # a uniform model's 50, cut by the repeats
    test_scores = flat(test)
    with_cache = mixed_nll(test_scores, cache_probs(test_scores, settings.window, settings.theta), settings.lam)
    assert math.exp(with_cache) < 0.5 * 50  # settings from val carry over to another text that repeats


def test_cache_evaluation_reports_each_split():
    torch.manual_seed(0)
    net = RNNLM(NetSettings(30, "rnn", 8, 16)).eval()
    val, test = torch.randint(0, 30, (80,)), torch.randint(0, 30, (70,))
    chars = {"val": SplitChars(79, 158), "test": SplitChars(69, 138, unk_bits=69.0)}  # 2 characters a token
    result = cache_evaluation(net, val, test, chars, [20], [1.0], [0.1, 0.3])
    assert result["val/loss_cache"] <= result["val/loss_stream"]  # tuned there; lam 0 is a candidate
    stream = read_stream(net, test)
    assert result["test/loss_stream"] == pytest.approx(-stream.target_prob.log().mean().item(), rel=1e-5)
    # bits per character: the loss in bits and the <unk>s' spelling (1 bit a token here), over 2 characters a token
    assert result["test/bpc_cache"] == pytest.approx((result["test/loss_cache"] / math.log(2) + 1.0) / 2.0)
    assert result["val/bpc_cache"] == pytest.approx(result["val/loss_cache"] / math.log(2) / 2.0)
    assert result["test/ppl_cache"] == pytest.approx(math.exp(result["test/loss_cache"]))


def test_tune_keeps_no_cache_when_the_cache_only_hurts():
    # every target differs from every earlier word: the cache can only take mass away
    scores = StreamScores(torch.full((30,), 0.2), torch.randn(30, 4), torch.arange(30))
    settings, nll = tune(scores, [10], [1.0], [0.1, 0.5])
    assert settings.lam == 0 and nll == pytest.approx(-math.log(0.2))


def test_max_tokens_reads_only_the_first_tokens_of_each_split():
    torch.manual_seed(0)
    net = RNNLM(NetSettings(30, "rnn", 8, 16)).eval()
    val, test = torch.randint(0, 30, (300,)), torch.randint(0, 30, (250,))
    args = ({"val": SplitChars(299, 598), "test": SplitChars(249, 498)}, [20], [1.0], [0.1, 0.3])
    bounded = cache_evaluation(net, val, test, *args, max_tokens=100)
    assert bounded == pytest.approx(cache_evaluation(net, val[:100], test[:100], *args))
    assert bounded != pytest.approx(cache_evaluation(net, val, test, *args))


def test_progress_bars_show_each_stream_and_the_grid_and_change_no_figure(capsys):
    torch.manual_seed(0)
    net = RNNLM(NetSettings(30, "rnn", 8, 16)).eval()
    val, test = torch.randint(0, 30, (600,)), torch.randint(0, 30, (500,))
    args = ({"val": SplitChars(599, 1198), "test": SplitChars(499, 998)}, [20, 40], [0.5, 1.0], [0.1, 0.3])
    quiet = cache_evaluation(net, val, test, *args)
    assert capsys.readouterr().err == ""
    shown = cache_evaluation(net, val, test, *args, progress=True)
    err = capsys.readouterr().err
    # each bar with its total (tokens, then the (window, theta) pairs); leave=False clears them when done
    assert "Stream (val):" in err and "/599 " in err and "Stream (test):" in err and "/499 " in err
    assert "Cache grid (val):" in err and "/4 " in err
    assert shown == quiet
