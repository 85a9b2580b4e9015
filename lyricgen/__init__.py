"""lyricgen: word-level lyrics language models with PyTorch Lightning and Hydra."""

from lyricgen.errors import LyricgenError

__all__ = ["LyricgenError"]
__version__ = "0.1.0"
