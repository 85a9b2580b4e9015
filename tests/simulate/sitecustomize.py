"""Run Python here as it runs on macOS or Windows, as far as lyricgen can tell: `LYRICGEN_SIMULATE=macos` or
`windows` with this folder on PYTHONPATH (Python imports `sitecustomize` at start-up, in every process, the
workers that multiprocessing spawns included). What each system lacks is taken away before any of lyricgen's
code runs:

- both: `/proc` (Linux's view of memory and processes) cannot be opened, except by psutil and filelock, the
  libraries that read each system its own way; processes start with `spawn`, the only start method offered
  (macOS's default and Windows's only one);
- macOS: `os.sysconf` refuses the names macOS lacks (`SC_AVPHYS_PAGES`), as macOS's Python does;
- windows: no `os.sysconf` at all, and no `fcntl` module (filelock then locks with its marker files, as it
  locks with msvcrt on Windows).

A console in a code page without Chinese characters is the environment's part: `LC_ALL=C PYTHONUTF8=0` with
`PYTHONIOENCODING` unset makes redirected output and files opened without an encoding ASCII (see
`.ci/run` and docs/laptops.md). What cannot be simulated: Metal (mps) itself, msvcrt's locks, Windows's
paths (`C:\\...`) and signals; docs/laptops.md says how those were checked.
"""

from __future__ import annotations

import os

SYSTEM = os.environ.get("LYRICGEN_SIMULATE", "")
ALLOWED_PROC_READERS = ("psutil", "filelock")  # they read /proc only on Linux; on macOS and Windows, the system's API


def _caller_module(depth: int = 2) -> str:
    import sys

    frame = sys._getframe(depth)
    return frame.f_globals.get("__name__", "") if frame else ""


def _block_proc() -> None:
    import builtins
    import io

    real_open, real_os_open = builtins.open, os.open

    def is_proc(path) -> bool:
        try:
            return os.fspath(path).startswith("/proc")
        except TypeError:  # a file descriptor
            return False

    def refused(path) -> OSError:
        return FileNotFoundError(2, f"No such file or directory (LYRICGEN_SIMULATE={SYSTEM}: no /proc)", str(path))

    def open_(file, *args, **kwargs):
        if is_proc(file) and not _caller_module().startswith(ALLOWED_PROC_READERS):
            raise refused(file)
        return real_open(file, *args, **kwargs)

    def os_open(path, *args, **kwargs):
        if is_proc(path) and not _caller_module().startswith(ALLOWED_PROC_READERS):
            raise refused(path)
        return real_os_open(path, *args, **kwargs)

    builtins.open = io.open = open_
    os.open = os_open


def _spawn_only() -> None:
    import multiprocessing as mp
    import multiprocessing.context as ctx

    mp.set_start_method("spawn", force=True)
    only = lambda: ["spawn"]  # noqa: E731
    mp.get_all_start_methods = ctx.DefaultContext.get_all_start_methods = only


def _macos_sysconf() -> None:
    real = getattr(os, "sysconf", None)
    if real is None:  # (a real Windows machine running the simulation: nothing to take away)
        return

    def sysconf(name):
        if name == "SC_AVPHYS_PAGES" or name == os.sysconf_names.get("SC_AVPHYS_PAGES"):
            raise ValueError("unrecognized configuration name")
        return real(name)

    os.sysconf = sysconf


def _windows() -> None:
    import sys

    sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows
    import filelock  # noqa: F401  (chooses its lock now: no fcntl, so marker files; it warns once, here)
    import psutil  # noqa: F401  (reads what it needs of os.sysconf at import, as on Linux; Windows has its own API)

    for name in ("sysconf", "sysconf_names"):
        if hasattr(os, name):
            delattr(os, name)


if SYSTEM in ("macos", "windows"):
    import warnings

    warnings.filterwarnings("ignore", message="only soft file lock is available")
    if SYSTEM == "windows":
        _windows()
    else:
        _macos_sysconf()
    _block_proc()
    _spawn_only()
elif SYSTEM:
    raise SystemExit(f"error: LYRICGEN_SIMULATE={SYSTEM!r}: give macos or windows (or leave it unset)")
