"""Write lyrics in the browser: python scripts/app.py [ckpt_path=PATH] [port=7860] [host=127.0.0.1]

Needs the optional extra (pip install -e ".[app]"). Serves the page (tabs Write, Critic, Model; API
endpoints `generate` and `critic` for gradio_client) on 127.0.0.1 until Ctrl-C.
"""

import sys

import hydra
from omegaconf import DictConfig

from lyricgen.cli import start_script, user_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="app")
def main(cfg: DictConfig) -> None:
    with user_errors():
        from lyricgen.app.models import Models
        from lyricgen.app.page import LyricsPage
        from lyricgen.app.serving import check_serving, require_gradio, serve
        from lyricgen.checkpoint import find_checkpoint
        from lyricgen.decoding import DecodingOptions
        from lyricgen.devices import pick_device

        require_gradio()  # bad settings are refused before the model is loaded
        host, port, concurrency, queue_size = check_serving(cfg.host, cfg.port, cfg.concurrency, cfg.queue_size)
        models = Models(cfg.runs_dir, device=pick_device(cfg.device))
        page = LyricsPage(models, DecodingOptions.from_mapping(cfg).check())  # first values, checked against the limits
        ckpt_path = cfg.ckpt_path or find_checkpoint(cfg.runs_dir)
        print(f"checkpoint: {ckpt_path}", file=sys.stderr)
        models.load(ckpt_path)  # once, before serving: every request shares it
        serve(page, host, port, concurrency, queue_size)


if __name__ == "__main__":
    start_script(__file__, "app")  # UTF-8 output, start_word=星星 as typed, a misspelt key: one line
    main()
