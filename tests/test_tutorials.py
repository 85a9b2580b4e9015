"""The tutorials' recipes: character and English-word models on small corpora, the two toys, tiny
Shakespeare downloaded with its checksum (from a local server)."""

import hashlib
import http.server
import json
import shutil
import threading
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import ROOT, best_checkpoint, compose_train, run_script, tiny_overrides

ENGLISH = ["Once upon a time, there was a king.", "He lived in a castle by the sea!", "ROMEO: I'll go--'tis he."]


def train_and_generate(tmp_path: Path, lines: list[str], train: list[str], generate: list[str]) -> str:
    """Train on `lines` sung over and over, delete the corpus, and generate from the best checkpoint."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines * 30) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = run_script("train", *tiny_overrides(corpus, tmp_path, *train), f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    corpus.unlink()  # generation needs only the checkpoint: vocabulary and tokeniser travel in it
    shutil.rmtree(tmp_path / "data")
    out = run_script("generate", f"ckpt_path={best_checkpoint(run_dir)}", "strategy=greedy", *generate)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_char_model_continues_a_learnt_english_line(tmp_path):
    text = train_and_generate(
        tmp_path,
        ENGLISH,
        ["tokenizer=char", "data.seq_len=64", "trainer.max_epochs=6"],
        ["start_word=Once upon", "lines=2"],
    )
    assert text.splitlines()[:2] == ENGLISH[:2]


def test_words_model_writes_readable_english(tmp_path):
    text = train_and_generate(
        tmp_path, ENGLISH, ["tokenizer=words", "data.min_freq=1"], ["start_word=He lived", "lines=2"]
    )
    assert text.splitlines()[:2] == [ENGLISH[1], ENGLISH[2]]  # "sea!" and "go--'tis", spaced as written


def test_window_of_ten_characters_toy(tmp_path):
    # tutorial 1: a character SimpleRNN trained on windows of 10 characters, argmax generation
    line = "the quick brown fox jumps over the lazy dog"
    text = train_and_generate(
        tmp_path,
        [line],
        ["tokenizer=char", "model=rnn", "data.seq_len=10", "data.min_freq=1", "trainer.max_epochs=8"],
        [f"start_word={line[:10]}", "lines=3", "length=200"],
    )
    assert text.splitlines()[:3] == [line] * 3


def test_abcde_toy_reaches_full_accuracy(tmp_path):
    # tutorial 2: a SimpleRNN that learns to continue "abcde", with accuracy and loss curves
    text = train_and_generate(
        tmp_path,
        ["abcde"],
        ["tokenizer=char", "model=rnn", "data.min_freq=1", "data.seq_len=8"],
        ["start_word=a", "lines=4"],
    )
    assert text.splitlines()[:4] == ["abcde"] * 4
    (version,) = (tmp_path / "run" / "tensorboard").iterdir()
    acc = EventAccumulator(str(version))
    acc.Reload()
    val_acc = [e.value for e in acc.Scalars("val/acc")]
    loss = [e.value for e in acc.Scalars("train/loss")]
    train_acc = [e.value for e in acc.Scalars("train/acc")]
    assert val_acc[-1] == pytest.approx(1.0) and train_acc[0] < 0.5  # the accuracy curve climbs to 100%
    assert loss[-1] < 0.1 * loss[0]


@pytest.fixture
def shakespeare_server(tmp_path):
    """data/tinyshakespeare.txt (CI copies it from ../shared/data) served on a local port."""
    source = ROOT / "data" / "tinyshakespeare.txt"
    if not source.is_file():
        pytest.skip("data/tinyshakespeare.txt is missing: copy it from ../shared/data (as .ci/run does)")
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(source, root / "input.txt")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/input.txt"
    server.shutdown()


def test_shakespeare_is_downloaded_once_and_checked(tmp_path, shakespeare_server):
    cfg = compose_train(
        ["data=shakespeare", "tokenizer=char", f"paths.data_dir={tmp_path / 'data'}", f"data.url={shakespeare_server}"],
        tmp_path,
    )
    assert cfg.data.sha256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"  # the published file
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    path = tmp_path / "data" / "tinyshakespeare.txt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == cfg.data.sha256
    seen = Counter(dm.tokens("train"))
    assert len(dm.vocab) == 1 + sum(n >= 2 for n in seen.values()) and len(dm.vocab) > 60  # characters and <unk>
    assert dm.tokens("train")[:15] == list("First Citizen:\n")
    assert "\n\n" in "".join(dm.tokens("train")[:200])  # the blank line between speeches is kept
    assert dm.chars["test"].chars_per_token == 1.0  # a character model: bpc = loss in bits


def test_tutorials_table_is_read_from_the_runs(tmp_path, tiny_corpus):
    out = tmp_path / "runs"
    result = run_script(
        "tutorials",
        "--experiments",
        "d2l_jaychou",
        "--max-minutes",
        "5",
        "--out",
        str(out),
        "--",
        *tiny_overrides(tiny_corpus, tmp_path, "trainer.max_epochs=2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "d2l_jaychou" / "results.json").read_text())
    (row,) = [line for line in result.stdout.splitlines() if "`d2l_jaychou`" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{results['test_loss']:.3f}" and cells[3] == f"{results['test_bpc']:.3f}"
    assert cells[5] == f"{results['params']:,}" and results["params"] > 0
    assert "capped at 5 minutes" in result.stdout
    assert "`python scripts/tutorials.py --experiments d2l_jaychou --max-minutes 5`" in result.stdout  # as it ran
    bad = run_script("tutorials", "--experiments", "nope")
    assert bad.returncode != 0 and "no experiment 'nope'" in bad.stderr


def test_adaptive_softmax_model_trains_checkpoints_and_generates(tmp_path):
    from tests.conftest import TINY_LINES

    text = train_and_generate(
        tmp_path,
        TINY_LINES,
        ["model=gru", "model.softmax=adaptive", "model.cutoffs=[4,10]"],
        ["start_word=我爱你", "lines=2"],
    )
    assert text.splitlines()[:2] == [TINY_LINES[1], TINY_LINES[2]]  # a learnt line, continued exactly
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test_ppl"] < 3.0  # the held-out lines are the learnt ones


@pytest.mark.parametrize("div_value, head_bias", [(4.0, False), (2.0, True), (1.0, True)])
def test_adaptive_softmax_scores_are_normalised_and_match_its_loss(div_value, head_bias):
    import torch

    from lyricgen.model import LyricsLM

    torch.manual_seed(0)
    model = LyricsLM(
        vocab_size=300,
        cell="gru",
        emb_dim=16,
        hidden_size=32,
        softmax="adaptive",
        cutoffs=[20, 100],
        div_value=div_value,
        head_bias=head_bias,
    )
    head = model.net.head
    assert (head.head.bias is not None) == head_bias
    assert head.tail[1][0].out_features == int(32 // div_value**2)  # the second cluster's projection
    model.eval()
    x, y = torch.randint(0, 300, (2, 9)), torch.randint(0, 300, (2, 9))
    y[1, -2:] = -100  # padding, left out
    logp, _ = model.net(x)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, 9))  # a distribution over every word
    real = y != -100
    expected = -logp[real].gather(1, y[real][:, None]).mean()
    assert model._shared_step((x, y), "val").item() == pytest.approx(expected.item(), rel=1e-5)


def test_adaptive_softmax_scores_in_float32_under_bf16_autocast():
    """bf16-mixed training (experiment=songci_char): the loss and log-probabilities keep float32's precision,
    so that two models are told apart (a bf16 sum over a batch kept ~3 digits: the same val/ppl for both)."""
    import torch

    from lyricgen.model import LyricsLM

    x, y = torch.randint(0, 300, (4, 50)), torch.randint(0, 300, (4, 50))
    losses = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = LyricsLM(vocab_size=300, cell="lstm", emb_dim=16, hidden_size=32, softmax="adaptive", cutoffs=[20])
        model.eval()
        exact = model._shared_step((x, y), "val")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model._shared_step((x, y), "val")
            logp, _ = model.net(x)
        assert mixed.dtype == logp.dtype == torch.float32
        assert mixed.item() == pytest.approx(exact.item(), rel=2e-3)  # the matmuls' bf16 error alone
        losses.append(mixed.item())
    assert abs(losses[0] - losses[1]) > 1e-4  # two models, two losses


def test_adaptive_checkpoints_made_before_div_value_and_head_bias_keep_their_layout():
    from lyricgen.rnnlm import RNNLM, NetSettings

    old = {"vocab_size": 300, "cell": "gru", "emb_dim": 16, "hidden_size": 32, "softmax": "adaptive", "cutoffs": [20]}
    settings = NetSettings.from_hparams(old)  # the hparams of such a checkpoint lack both options
    assert (settings.div_value, settings.head_bias) == (4.0, False)  # torch's defaults, as they were made
    head = RNNLM(settings).head
    assert head.head.bias is None and head.tail[0][0].out_features == 8
