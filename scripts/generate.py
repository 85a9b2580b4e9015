"""Write lyrics with a trained model: python scripts/generate.py start_word=星星 [key=value ...]

    python scripts/generate.py rhyme=AABB line_chars=7 lines=8          # form: see conf/decoding/default.yaml
    python scripts/generate.py acrostic=星星点灯 rhyme=XAXA no_copy=4
    python scripts/generate.py cipai=浣溪沙                               # a ci of a model trained on data=songci

Lyrics go to stdout (one lyric line per line, samples separated by a blank line); everything else
goes to stderr, so the output can be piped.
"""

import sys

import hydra
from omegaconf import DictConfig

from lyricgen.cli import quiet_libraries, start_script, user_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    with user_errors():
        # Imported here so that Hydra's --help and config errors do not wait for torch.
        from lyricgen.checkpoint import find_checkpoint
        from lyricgen.config import check_config
        from lyricgen.decoding import DecodingOptions
        from lyricgen.devices import pick_device
        from lyricgen.generation import LyricsGenerator

        check_config(cfg, "generate")  # bad values are refused before any model is loaded
        opts = DecodingOptions.from_mapping(cfg)
        ckpt_path = cfg.ckpt_path or find_checkpoint(cfg.runs_dir)
        print(f"checkpoint: {ckpt_path}", file=sys.stderr)
        generator = LyricsGenerator.from_checkpoint(ckpt_path, device=pick_device(cfg.device))
        if opts.cipai == "list":  # the tunes of a model trained on ci, with their shapes
            print(generator.tune_list())
            return
        start_word = "" if cfg.start_word is None else str(cfg.start_word)
        samples = generator.generate(start_word, seed=cfg.seed, opts=opts)
        print("\n\n".join(samples))


if __name__ == "__main__":
    start_script(__file__, "generate")  # UTF-8 output, start_word=星星 as typed, a misspelt key: one line
    main()
