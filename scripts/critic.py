"""Score lyrics you wrote: python scripts/critic.py path=my_lyrics.txt [ckpt_path=PATH]

Per line: its characters, rhyme class (十三辙), perplexity under the model, and whether it copies a run of
`copy_n` words from the training text (and where, when the run's corpus is at hand); then the detected
rhyme scheme, the rhyme rate and, on a line of its own, `perplexity: ...` of the whole text.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lyricgen.cli import quiet_libraries, start_script, user_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="critic")
def main(cfg: DictConfig) -> None:
    quiet_libraries()
    with user_errors():
        from lyricgen.checkpoint import find_checkpoint
        from lyricgen.config import check_config
        from lyricgen.critic import critique, format_critique, read_lyrics, training_lines_of_run
        from lyricgen.devices import pick_device
        from lyricgen.generation import LyricsGenerator

        check_config(cfg, "critic")
        text = read_lyrics(cfg.path)
        ckpt_path = Path(cfg.ckpt_path or find_checkpoint(cfg.runs_dir))
        print(f"checkpoint: {ckpt_path}", file=sys.stderr)
        generator = LyricsGenerator.from_checkpoint(ckpt_path, device=pick_device(cfg.device))
        training = training_lines_of_run(ckpt_path, generator)  # None when the run's corpus is not at hand
        report = critique(generator, text, cfg.rhyme_rule, int(cfg.copy_n), training)
        print(format_critique(report, has_index=generator.ngrams is not None or training is not None))


if __name__ == "__main__":
    start_script(__file__, "critic")  # UTF-8 output, start_word=星星 as typed, a misspelt key: one line
    main()
