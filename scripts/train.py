"""Train a lyrics language model: python scripts/train.py model=rnn data=jaychou [key=value ...]

The run itself is `lyricgen.training.train`; this script composes the config and calls it.
"""

import hydra
from omegaconf import DictConfig

from lyricgen.cli import quiet_libraries, start_script, user_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    quiet_libraries()
    with user_errors():
        from lyricgen.training import train  # imported here: torch loads after start_script's settings

        return train(cfg).get("best_val_bpc")  # what a sweeper minimises: val bits per character, every one counted


if __name__ == "__main__":
    start_script(__file__, "train")  # UTF-8 output, start_word=星星 as typed, a misspelt key: one line
    main()
