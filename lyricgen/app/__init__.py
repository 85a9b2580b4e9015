"""The web page: `python scripts/app.py`, three tabs on one loaded model, built with Gradio.

- **Write**: every decoding and form option, made from the fields of `DecodingOptions` (`inputs`); the lyrics,
  each line with its characters and rhyme class, and the lyric measures of what was written
  (`LyricsPage.generate`, API name `generate`).
- **Critic**: lyrics pasted in, the critic's table and summary (`LyricsPage.critic`, API name `critic`).
- **Model**: the loaded checkpoint and the training runs under `runs_dir` to switch to, picked by name.

By what each does: `models` (the loaded model, switched by run name), `inputs` (the browser's values read and
checked against the page's limits), `page` (the page's functions, plain Python that raises `LyricgenError`),
`layout` (the Gradio Blocks, which show such an error on the page and keep serving) and `serving` (Gradio's
queue on a local address, until Ctrl-C).
"""
