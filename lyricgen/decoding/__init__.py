"""Decoding: options, token-by-token sampling, rhyme classes and form constraints.

`lyricgen.generation.LyricsGenerator` puts them together for the scripts, the callbacks and Python users.
"""

from lyricgen.decoding.options import DecodingOptions

__all__ = ["DecodingOptions"]
