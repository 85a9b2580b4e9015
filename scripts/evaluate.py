"""Evaluate a checkpoint: python scripts/evaluate.py [ckpt_path=PATH] [num_samples=100 temperature=0.8 ...]

Prints a table: val and test loss, perplexity and bpc on the protocol v2 split, each split's <unk> share,
novelty, distinct-1/2, repeated-line rate.
"""

import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lyricgen.cli import quote_non_ascii, user_errors

@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with user_errors():
        from lyricgen.evaluation import evaluate_checkpoint
        from lyricgen.generation import DecodingOptions, find_checkpoint

        opts = DecodingOptions.from_mapping(cfg).check()
        ckpt_path = Path(cfg.ckpt_path or find_checkpoint(cfg.runs_dir))
        run_config = ckpt_path.parent.parent / ".hydra" / "config.yaml"
        data_cfg = OmegaConf.load(run_config) if run_config.is_file() else cfg
        print(f"checkpoint: {ckpt_path}\ndata settings: {run_config if run_config.is_file() else 'conf/data'}", file=sys.stderr)
        result = evaluate_checkpoint(
            str(ckpt_path), instantiate(data_cfg.data), opts, str(cfg.start_word or ""), cfg.seed, cfg.accelerator
        )
        settings = f"{cfg.num_samples} samples, {cfg.strategy}, temperature {cfg.temperature}, top_p {cfg.top_p}, top_k {cfg.top_k}"
        print(f"| metric | value |\n| --- | --- |")
        for name, value in result.items():
            print(f"| {name} | {value:.3f} |")
        print(f"\n({settings}; checkpoint {ckpt_path})")


if __name__ == "__main__":
    sys.argv = quote_non_ascii(sys.argv)
    main()
