"""What the entry points share: user errors printed on one line with exit code 2."""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lyricgen.errors import LyricgenError
from lyricgen.files import DISK_FULL

# A run of characters that Hydra would read as one unquoted value, holding at least one non-ASCII one.
_NON_ASCII_WORD = re.compile(r"""[^\s,\[\]{}:='"\\]*[^\x00-\x7f][^\s,\[\]{}:='"\\]*""")


def quote_non_ascii(argv: list[str]) -> list[str]:
    """Quote non-ASCII values in `key=value` overrides, which Hydra's grammar only accepts quoted.

    So `start_word=星星` works as typed (Hydra alone needs `start_word="星星"`); arguments that
    already hold quotes are left as they are.
    """
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and not key.startswith("-") and value.isascii() is False and not set("'\"") & set(value):
            if value[:1] in "[{":  # a list or dict: quote each element that needs it
                value = _NON_ASCII_WORD.sub(lambda m: f"'{m.group(0)}'", value)
            else:
                value = f"'{value}'"
        out.append(f"{key}{eq}{value}")
    return out


def _flat_keys(node: dict, prefix: str = "") -> list[str]:
    """The dotted keys of a config as a plain dict (`model.hidden_size`)."""
    keys = []
    for key, value in node.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict):
            keys += _flat_keys(value, f"{prefix}{key}.")
    return keys


def _override_error(e: Exception, compose: Callable[[list[str]], DictConfig], script: str) -> str:
    """One line for a Hydra composition error of the command line's overrides (`compose(overrides)`: the
    config, composed again only to suggest the nearest key)."""
    from hydra.errors import MissingConfigException

    if isinstance(e, MissingConfigException) and e.options and "/" in (e.missing_cfg_file or ""):
        group, _, name = e.missing_cfg_file.rpartition("/")
        return f"{group}={name} is not one of the {group} configs; choose one of {', '.join(e.options)}"
    lines = str(e).splitlines()
    missing = re.fullmatch(r"Could not override '([^']+)'\.", lines[0]) if lines else None
    if missing and len(lines) > 1 and lines[1].startswith("To append to your config use +"):
        key, append = missing.group(1), lines[1].removeprefix("To append to your config use ")
        known = _flat_keys(OmegaConf.to_container(compose([]), resolve=False))  # interpolations as written
        near = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        return f"{key} is not a setting of {script}{hint}; check its spelling, or if it is new, add it with {append}"
    kept = []
    for line in lines:
        if line.startswith("Config search path") or line.startswith("Set the environment variable HYDRA_FULL_ERROR"):
            break
        if line.strip() and not line.startswith("See https://hydra.cc"):
            kept.append(line.strip().rstrip("."))
    return "; ".join(kept) or type(e).__name__


def check_overrides(argv: list[str], conf_dir: Path, config_name: str) -> None:
    """Compose `config_name` from `conf_dir` with the command line's overrides, as Hydra is about to, and stop
    a mistake in them (a misspelt key, a config a group does not have, a value Hydra cannot parse) with one
    line and exit code 2, where Hydra would print several (and a hint about HYDRA_FULL_ERROR) and exit 1.
    A command line with no overrides, or with Hydra's own flags (--help, --cfg, --multirun, ...), is left to
    Hydra as it is."""
    overrides = argv[1:]
    if not overrides or _asks_for_search(overrides) or any(arg.startswith("-") for arg in overrides):
        return  # a search's overrides may be sweeps (choice(...)), which its sweeper reads
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    def composed(given: list[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return compose(config_name, overrides=given, return_hydra_config=True)

    try:
        composed(overrides)
    except HydraException as e:
        script = Path(argv[0]).name or config_name
        print(f"error: {_override_error(e, composed, script)}", file=sys.stderr)
        raise SystemExit(2) from None


def utf8_output() -> None:
    """Write stdout and stderr as UTF-8 whatever the console or the redirection: Windows writes a redirected
    stream in the locale's code page (cp1252, cp936), and a C locale in ASCII, where Chinese lyrics fail."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
            stream.reconfigure(encoding="utf-8")


def utf8_argument(arg: str) -> str:
    """A command-line argument whose bytes the locale could not decode (`start_word=星星` in a C locale, where
    Python keeps them as surrogates) read as UTF-8, what terminals send; others as they are."""
    try:
        return os.fsencode(arg).decode("utf-8") if any("\udc80" <= c <= "\udcff" for c in arg) else arg
    except UnicodeDecodeError:
        return arg


class TrialRefused(CompactHydraException):
    """A trial of a search (`-m hparams_search=...`) that was refused as a user error: the search's sweeper
    counts it as a failed trial and goes on."""


def _in_search() -> bool:
    """Whether this process runs the trials of lyricgen's search sweeper (hydra_plugins/lyricgen_search), which
    goes on past a failed trial; any other sweep (`-m model=rnn,gru`) stops at a refused job, as a run does."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return False
    return "lyricgen_search" in str(HydraConfig.get().sweeper.get("_target_", ""))


def _asks_for_search(overrides: list[str]) -> bool:
    """Whether the command line's overrides choose a hyperparameter search (`hparams_search=...`)."""
    return any(arg.startswith("hparams_search=") for arg in overrides)


def check_sweeper(argv: list[str]) -> None:
    """`hparams_search=...` needs Hydra's Optuna sweeper, an extra: stop with one line that says how to get it."""
    if not _asks_for_search(argv[1:]):
        return
    try:
        import hydra_plugins.hydra_optuna_sweeper  # noqa: F401
    except ImportError:
        print(
            'error: hparams_search needs Hydra\'s Optuna sweeper; install it with pip install -e ".[tune]"',
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def start_script(script: str, config_name: str) -> None:
    """What every Hydra script does before Hydra's main: UTF-8 output, `start_word=星星` quoted for Hydra's
    grammar, and a mistake in the overrides stopped in one line (`check_overrides`). `script`: its `__file__`.
    On macOS, an operation that Apple's GPU lacks runs on the CPU (with torch's warning) instead of failing: torch
    reads PYTORCH_ENABLE_MPS_FALLBACK when it is imported, which the scripts do after this."""
    if sys.platform == "darwin":
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    utf8_output()
    sys.argv = quote_non_ascii([utf8_argument(arg) for arg in sys.argv])
    check_sweeper(sys.argv)
    check_overrides(sys.argv, Path(script).resolve().parents[1] / "conf", config_name)


def _chain(e: BaseException | None) -> Iterator[BaseException]:
    """`e` and the exceptions behind it (its cause, or the one it was raised while handling), in turn."""
    seen = set()
    while e is not None and id(e) not in seen:
        yield e
        seen.add(id(e))
        e = e.__cause__ or e.__context__


def _user_error(e: BaseException) -> LyricgenError | None:
    """The LyricgenError behind `e`, also when Hydra's instantiate wrapped it."""
    return next((c for c in _chain(e) if isinstance(c, LyricgenError)), None)


def _disk_full(e: BaseException) -> str | None:
    """What to do when `e` is, or was raised while handling, a disk that filled up as a file was written."""
    full = next((c for c in _chain(e) if isinstance(c, OSError) and c.errno in DISK_FULL), None)
    if full is None:
        return None
    where = f" writing {full.filename}" if full.filename else ""
    return (
        f"the disk is full ({full.strerror}){where}; free some space there and run the command again "
        "(a training resumes from its last checkpoint: ckpt_path=RUN/checkpoints/last.ckpt)"
    )


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a LyricgenError (a mistake the user can fix) or a full disk into `error: ...` on stderr and exit
    code 2. In a search, a refused trial is a failed trial (`TrialRefused`) and the search goes on; a bug's
    traceback goes to the trial's log, where the sweeper's one line would lose it."""
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except BrokenPipeError:  # the reader went away (generate.py ... | head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        raise SystemExit(141) from None
    except Exception as e:
        refused = _user_error(e)
        if refused is not None and _in_search():
            raise TrialRefused(f"error: {refused}") from None
        user = refused or _disk_full(e)
        if user is None:
            if _in_search():
                logging.getLogger("lyricgen").exception("the trial failed")  # its train.log keeps the traceback
            raise  # a bug: keep the traceback
        print(f"error: {user}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def lightning_errors(what: str) -> Iterator[None]:
    """Building Lightning's objects from a checked config: what Lightning still refuses (a strategy whose
    package is missing, a precision this accelerator cannot run) becomes one line that names `what`."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        yield
    except Exception as e:
        cause = e
        while cause.__cause__ is not None:  # Hydra's InstantiationException wraps Lightning's error
            cause = cause.__cause__
        refusals = (ValueError, TypeError, ImportError, RuntimeError, MisconfigurationException)
        if isinstance(cause, LyricgenError) or not isinstance(cause, refusals):
            raise
        message = " ".join(str(cause).split())
        raise LyricgenError(f"{what}: Lightning refused the settings: {message}") from e


class _NoTips(logging.Filter):
    """Drops Lightning's advertising ("💡 Tip: ... try installing litlogger / litmodels")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_libraries(lightning_info: bool = True) -> None:
    """Keep a script's output to what the user needs: Lightning's tips and a deprecation warning that
    Lightning itself triggers in torch (LeafSpec) are dropped where they are emitted, by their message;
    every other warning and log line stays. `lightning_info=False` also drops Lightning's info lines
    ("GPU available: ...", for a command that only evaluates). Call it inside the Hydra main, after Hydra
    has set up logging (which disables loggers made before it)."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    rank_zero.addFilter(_NoTips())
    if not lightning_info:
        rank_zero.setLevel(logging.WARNING)
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
    )


def fill_readme_block(readme, name: str, text: str) -> None:
    """Replace what stands between `<!-- name:start -->` and `<!-- name:end -->` in `readme` with `text`
    (the tables that compare.py and tutorials.py measure)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    body = readme.read_text(encoding="utf-8")
    if start not in body or end not in body:
        sys.exit(f"error: {readme} has no {start} ... {end} block to fill")
    readme.write_text(
        re.sub(f"{start}.*?{end}", lambda m: f"{start}\n{text}\n{end}", body, flags=re.S), encoding="utf-8"
    )


class RunDirLock(Callback):
    """One training at a time in a run directory (`hydra.callbacks.run_dir_lock` in conf/train.yaml).

    Before Hydra writes anything into the run directory (its `.hydra/` config, the log), take a lock on its
    `.train.lock`, held until the run ends: a second training started there meanwhile, whose config,
    checkpoints, logs and results.json would overwrite the first's, stops at once with one line. Only the
    first process of a run takes it (the other DDP ranks, which Lightning or torchrun start with RANK or
    LOCAL_RANK set, or srun with SLURM_PROCID, write into the same directory on purpose)."""

    def __init__(self) -> None:
        self.lock: FileLock | None = None

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_PROCID") or "0"
        if rank != "0":
            return
        folder = Path(str(config.hydra.run.dir))
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder / ".train.lock")  # fcntl on Linux and macOS, msvcrt on Windows
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(
                f"error: another training is running in {folder} (it holds {folder / '.train.lock'}); wait for "
                "it to end, or give this one its own directory (e.g. hydra.run.dir=outputs/second)",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        self.lock = lock

    def on_run_end(self, config: DictConfig, **kwargs) -> None:
        if self.lock is not None:
            self.lock.release()  # (so does the process's end, however it ends)
            self.lock = None
