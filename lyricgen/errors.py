"""The one exception type for mistakes a user can make (bad paths, bad options, bad files)."""


class LyricgenError(Exception):
    """A problem the user can fix; entry points print its message on one line and exit with code 2."""
