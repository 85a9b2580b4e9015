"""What the entry points share: user errors printed on one line with exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from lyricgen.errors import LyricgenError


def _user_error(e: BaseException) -> LyricgenError | None:
    """The LyricgenError behind `e`, also when Hydra's instantiate wrapped it."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, LyricgenError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a LyricgenError (a mistake the user can fix) into `error: ...` on stderr and exit code 2."""
    try:
        yield
    except Exception as e:
        user = _user_error(e)
        if user is None:
            raise  # a bug: keep the traceback
        print(f"error: {user}", file=sys.stderr)
        raise SystemExit(2) from None
