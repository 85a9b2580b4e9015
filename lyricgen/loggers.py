"""The run's summary for each logger: its hyperparameters with its final figures, in the form each logger takes."""

from __future__ import annotations

from lightning.pytorch.loggers import Logger, TensorBoardLogger

# The final figures of a run (keys of results.json) that the summary carries, under `hp/` (e.g. `hp/test_ppl`).
HPARAM_METRICS = (
    "best_val_ppl",
    "best_val_bpc",
    "test_ppl",
    "test_bpc",
    "test_ppl_cache",
    "test_bpc_cache",
    "unk_share_test",
    "novelty",
    "distinct-1",
    "distinct-2",
    "repeated-line rate",
    "rhyme rate",
    "sample ppl",
)


def summary_metrics(result: dict) -> dict[str, float]:
    """The figures of HPARAM_METRICS that the run has, as `hp/...` metric names (no spaces or dashes)."""
    return {f"hp/{k.replace(' ', '_').replace('-', '_')}": float(result[k]) for k in HPARAM_METRICS if k in result}


def log_hparams_summary(loggers: list[Logger], params: dict, result: dict) -> None:
    """Hand each logger the run's hyperparameters and its final figures. TensorBoard takes them together, so
    that its HParams tab has one row per run, with the figures as metric columns; the other loggers (CSV,
    MLflow, W&B) take the hyperparameters alone, and the figures as metrics at the run's last step."""
    metrics = summary_metrics(result)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics)
        else:
            logger.log_hyperparams(params)
            if metrics:
                logger.log_metrics(metrics, step=result.get("global_step"))
        logger.save()
