"""Evaluate a checkpoint: python scripts/evaluate.py [ckpt_path=PATH] [num_samples=100 temperature=0.8 rhyme=AABB ...]

Prints a table: val and test loss, perplexity and bpc on the protocol v2 split, each split's <unk> share;
for the samples and, as the reference, for the held-out (validation) lyrics: novelty, distinct-1/2,
repeated-line rate, rhyme rate, the form measures asked for (scheme, line-length and acrostic accuracy),
copy rate and the perplexity of the text under the model.
"""

import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lyricgen.cli import quiet_libraries, start_script, user_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    quiet_libraries(lightning_info=False)
    with user_errors():
        from lyricgen.checkpoint import find_checkpoint
        from lyricgen.config import check_config, run_data_config
        from lyricgen.decoding import DecodingOptions
        from lyricgen.evaluation import evaluate_checkpoint
        from lyricgen.report import evaluation_report

        if cfg.get("cipai"):  # a ci has as many lines as its tune
            cfg.lines = None
        check_config(cfg, "evaluate")
        opts = DecodingOptions.from_mapping(cfg)
        ckpt_path = Path(cfg.ckpt_path or find_checkpoint(cfg.runs_dir))
        saved, run_config = run_data_config(ckpt_path)  # the run's data settings, else conf/data's
        print(
            f"checkpoint: {ckpt_path}\ndata settings: {run_config if saved is not None else 'conf/data'}",
            file=sys.stderr,
        )
        result = evaluate_checkpoint(
            str(ckpt_path),
            instantiate(saved if saved is not None else cfg.data),
            opts,
            str(cfg.start_word or ""),
            cfg.seed,
            cfg.accelerator,
            OmegaConf.to_container(cfg.cache) if cfg.get("cache") else None,
            cfg.tunes,
        )
        print(evaluation_report(result, opts, ckpt_path, cfg.lines, cfg.cipai or f"the {cfg.tunes} commonest tunes"))


if __name__ == "__main__":
    start_script(__file__, "evaluate")  # UTF-8 output, start_word=星星 as typed, a misspelt key: one line
    main()
