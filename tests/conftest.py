"""Shared fixtures: a tiny repetitive corpus and the real Hydra config composed on it."""

from __future__ import annotations

import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

# Four lines sung over and over: a model learns them in a few seconds, so a test can demand that it
# continues them exactly and that the loss really falls.
TINY_LINES = ["星星在天上闪烁", "我爱你到永远", "月亮照着我们的家", "风吹过安静的夜晚"]


def write_tiny_corpus(path: Path, *extra_lines: str) -> Path:
    """The tiny corpus (TINY_LINES thirty times) at `path`, with `extra_lines` after it (e.g. lines of new words
    that end up in the test split)."""
    path.write_text("\n".join([*TINY_LINES * 30, *extra_lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "tiny.txt")


def tiny_overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    """Overrides that train a small model on `corpus` quickly, writing into `out`."""
    return [
        "data=text",
        f"data.path={corpus}",
        f"paths.data_dir={out / 'data'}",
        "data.seq_len=32",
        "data.batch_size=2",
        "data.val_fraction=0.2",
        "model.emb_dim=32",
        "model.hidden_size=64",
        "model.dropout=0.0",
        "model.emb_dropout=0.0",
        "model.lr=0.01",
        "trainer.max_epochs=10",
        "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=1",
        *extra,
    ]


def compose_train(overrides: list[str], output_dir: Path):
    """The real train.yaml composed with overrides, with paths.output_dir set (no Hydra run here)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="train", overrides=[*overrides, f"paths.output_dir={output_dir}"])


def run_script(name: str, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run scripts/<name>.py as a user would, capturing stdout and stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        encoding="utf-8",  # what the scripts write on every system (lyricgen.cli.utf8_output)
        timeout=timeout,
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, the last stderr line is `error: ...` holding every fragment, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    return last


class RunsCode:
    """A pickled object whose unpickling creates its marker file: a checkpoint built to run code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def interruptible() -> None:
    """`preexec_fn` of a child that a test stops with SIGINT: Ctrl-C's default action, which a shell's
    background job (`cmd &`) would otherwise pass on ignored, so that Python never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def train_in_process(overrides: list[str], run_dir: Path) -> dict:
    """Train through the real `train(cfg)` of lyricgen.training (what scripts/train.py calls) with the composed
    config, in this process (as lightning-hydra-template's tests do); the run directory gets Hydra's
    `.hydra/config.yaml` as a real run's."""
    from lyricgen.training import train

    cfg = compose_train(overrides, run_dir)
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return train(cfg)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One training run on the tiny corpus, shared by the tests that need a checkpoint (read only)."""
    base = tmp_path_factory.mktemp("trained")
    corpus = write_tiny_corpus(base / "tiny.txt")
    run_dir = base / "outputs" / "2026-01-01" / "00-00-00"
    train_in_process(tiny_overrides(corpus, base, "trainer.max_epochs=20"), run_dir)
    return run_dir


def quick_overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    """`tiny_overrides` without the phases after training (the lyric measures, the cache grid)."""
    return tiny_overrides(corpus, out, "callbacks.lyrics_metrics=null", "cache=none", *extra)


def assert_resumes(corpus: Path, out: Path, run: Path) -> None:
    """Training goes on from the run's last.ckpt for one more epoch, counting on from its step."""
    from lyricgen.checkpoint import load_checkpoint

    saved = load_checkpoint(run / "checkpoints" / "last.ckpt")  # written at the end of epoch saved["epoch"]
    per_epoch = saved["global_step"] // (saved["epoch"] + 1)
    more = (f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"trainer.max_epochs={saved['epoch'] + 2}")
    result = train_in_process(quick_overrides(corpus, out, *more), run)
    assert result["global_step"] == saved["global_step"] + per_epoch and math.isfinite(result["test_ppl"])


def best_checkpoint(run_dir: Path) -> Path:
    (best,) = (run_dir / "checkpoints").glob("best-*.ckpt")
    return best


# Six real ci of 全宋词 (chinese-poetry's ci.song.2000.json), as its JSON records: two tunes whose shapes are
# fixed (浣溪沙 7。7。7。/7，7。/7。 rhyming on every 。; 菩萨蛮 7。7。5。5。5。5。5。5。 rhyming in pairs).
REAL_CI = [
    {
        "author": "葛胜仲",
        "rhythmic": "浣溪沙",
        "paragraphs": [
            "楼子包金照眼新。",
            "香根犹带广陵尘。",
            "翻阶不羡掖垣春。",
            "不分与花为近侍，难甘溱洧赠闲人。",
            "如羞如怨独含颦。",
        ],
    },  # noqa: E501
    {
        "author": "葛胜仲",
        "rhythmic": "浣溪沙",
        "paragraphs": [
            "东阁郎官巧写真。",
            "西湖处士妙传神。",
            "嫣然一笑腊前春。",
            "斗好虽无冰骨女，相宜幸是雪髯人。",
            "且烦疏影入清尊。",
        ],
    },  # noqa: E501
    {
        "author": "葛胜仲",
        "rhythmic": "浣溪沙",
        "paragraphs": [
            "盘里明珠芡实香。",
            "尊前堆雪脍丝长。",
            "何妨羌管奏伊凉。",
            "翠葆重生无复日，白波不釂有如江。",
            "壁间醉墨任淋浪。",
        ],
    },  # noqa: E501
    {
        "author": "曾纡",
        "rhythmic": "菩萨蛮",
        "paragraphs": [
            "山光冷浸清溪底。",
            "溪光直到柴门里。",
            "卧对白苹洲。",
            "猗眠数钓舟。",
            "溪山无限好。",
            "恨不相逢早。",
            "老病独醒多。",
            "如此良夜何。",
        ],
    },  # noqa: E501
    {
        "author": "向",
        "rhythmic": "菩萨蛮",
        "paragraphs": [
            "小楼不放珠帘卷。",
            "菱花羞照啼妆面。",
            "金鸭水沈烟。",
            "待君来共添。",
            "鹊声生暗喜。",
            "翠袖轮纤指。",
            "细细数归程。",
            "脸桃春色深。",
        ],
    },  # noqa: E501
    {
        "author": "向滈",
        "rhythmic": "菩萨蛮",
        "paragraphs": [
            "云屏月帐孤鸾恨。",
            "香消玉减无人问。",
            "斜倚碧琅玕。",
            "萧萧生暮寒。",
            "低垂双翠袖。",
            "袖薄轻寒透。",
            "庭院欲黄昏。",
            "凝情空断魂。",
        ],
    },  # noqa: E501
]


def write_songci(folder: Path, copies: int = 1, files: int = 2) -> Path:
    """A folder of chinese-poetry JSON files holding REAL_CI `copies` times, spread over `files` files."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    records = REAL_CI * copies
    per = -(-len(records) // files)
    for k in range(files):
        part = records[k * per : (k + 1) * per]
        (folder / f"ci.song.{k * 1000}.json").write_text(json.dumps(part, ensure_ascii=False), encoding="utf-8")
    return folder


def songci_overrides(folder: Path, out: Path, *extra: str) -> list[str]:
    """Overrides that train a small character model on a folder of ci quickly."""
    return tiny_overrides(
        folder,
        out,
        "data.format=songci",
        "tokenizer=char",
        "data.seq_len=48",
        "data.batch_size=4",
        "data.val_fraction=0.1",
        "data.test_fraction=0.1",
        "data.min_freq=1",
        "trainer.max_epochs=12",
        "callbacks.lyrics_metrics=null",
        "callbacks.sample_lyrics_form=null",
        "cache=none",
        *extra,
    )


# --- the web page: a page on the trained run, and runs a visitor may try to load ----------------------------

# classes by hand: 光 江阳, 伤 江阳, 飞 灰堆, 烁 梭波, 家 发花 (as in test_critic)
CRITIC_TEXT = "我看着月光\n你说你受伤\n\n鸟儿飞\n星星在天上闪烁\n我回家\n"
BIG = "星" * 100_000  # a field of 100,000 characters


def last_word_class(line: str) -> str | None:
    """The rhyme class of a written line, read back independently: jieba, then the last word."""
    from lyricgen.data.tokenizer import JiebaTokenizer
    from lyricgen.prosody import rhyme_class

    return rhyme_class(JiebaTokenizer().tokenize_line(line)[-1])


def assert_aabb(text: str, chars: int) -> None:
    """A sample of 8 lines of `chars` characters each that rhyme AABBAABB (A's class is not B's)."""
    from lyricgen.prosody import count_chars

    lines = text.split("\n")
    assert len(lines) == 8 and all(count_chars(line) == chars for line in lines), text
    c = [last_word_class(line) for line in lines]
    assert c[0] == c[1] == c[4] == c[5] != c[2] == c[3] == c[6] == c[7], (text, c)


@pytest.fixture(scope="module")
def page(trained_run):
    """The page's functions on the trained run (lyricgen.app.page.LyricsPage), its runs_dir the run's."""
    from lyricgen.app.models import Models
    from lyricgen.app.page import LyricsPage

    models = Models(trained_run.parents[1])  # runs_dir: <base>/outputs, the run is 2026-01-01/00-00-00
    models.load(best_checkpoint(trained_run))
    return LyricsPage(models)


def make_runs(trained_run: Path, base: Path) -> tuple[Path, Path, dict[str, str]]:
    """A runs folder: the trained run as 2026-01-01/00-00-00 and, under bad/, runs whose best checkpoint is
    broken one way each (older, so that the good run stays the newest). (runs_dir, marker, {bad run: the
    fragment of its message}); the marker file appears if any checkpoint's code ever runs."""
    runs_dir, marker, outside = base / "outputs", base / "code-ran", base / "outside"
    good = runs_dir / "2026-01-01" / "00-00-00"
    shutil.copytree(trained_run, good)
    ckpt = best_checkpoint(good).read_bytes()
    outside.mkdir()
    (outside / "best-x.ckpt").write_bytes(ckpt)

    def best_of(name: str) -> Path:
        (runs_dir / "bad" / name / "checkpoints").mkdir(parents=True)
        return runs_dir / "bad" / name / "checkpoints" / "best-epoch1.ckpt"

    torch.save({"state_dict": RunsCode(marker)}, best_of("runs-code"))
    best_of("runs-code-pickle").write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    best_of("truncated").write_bytes(ckpt[: len(ckpt) // 2])
    folder = best_of("folder")
    (folder.parent / "last.ckpt").write_bytes(ckpt)
    folder.mkdir()
    torch.save({"weights": torch.zeros(3)}, best_of("other-file"))
    (runs_dir / "bad" / "linked").mkdir()
    (runs_dir / "bad" / "linked" / "checkpoints").symlink_to(outside)  # a real checkpoint, outside runs_dir
    old = best_checkpoint(good).stat().st_mtime - 3600
    for path in (runs_dir / "bad").glob("*/checkpoints/*.ckpt"):
        os.utime(path, (old, old))
    fragments = {
        "bad/runs-code": "which lyricgen never unpickles: they could run code",
        "bad/runs-code-pickle": "which lyricgen never unpickles: they could run code",
        "bad/truncated": "it is truncated or not a zip archive",
        "bad/folder": "best-epoch1.ckpt is a folder, not a .ckpt file",
        "bad/other-file": "best-epoch1.ckpt is not a lyricgen checkpoint (no vocabulary or hyperparameters in it)",
        "bad/linked": "is a link to a file outside",
    }
    return runs_dir, marker, fragments


# names a visitor may type instead of picking one from the list; (the name, what its message says)
def path_like_names(outside_ckpt: Path) -> list[tuple[str, str]]:
    refused = "pick one from the list"
    return [
        ("../..", refused),
        ("/etc", refused),
        ("..%2F..", refused),
        ("2026-01-01/../../..", refused),
        (str(outside_ckpt), refused),  # a real checkpoint, by its absolute path
        (str(outside_ckpt.parent), refused),
        ("2026-01-01\x0000-00-00", refused),  # NUL
        ("x" * 100_000, "run name length (characters): 100000, over this page's limit of 500"),
    ]
