"""Corpus source -> tokeniser -> vocabulary -> datasets -> LightningDataModule.

Submodules are imported where used (`lyricgen.data.datamodule` needs Lightning, generation does not).
"""
