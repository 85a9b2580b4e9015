"""lyricgen's Hydra plugin, the sweeper of `hparams_search=` configs: Hydra's Optuna sweeper (the `tune` extra,
hydra-optuna-sweeper) with every option of it, which also leaves a table of its trials (`trials.md`,
lyricgen/search.py) beside the best settings (`optimization_results.yaml`), and ends a search whose every
trial failed in one line where Hydra's would raise a traceback. Hydra takes plugins only from this namespace."""

import logging
import sys
from pathlib import Path

from lyricgen.search import write_trials

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper as _HydraOptunaSweeper
except ImportError:  # no tune extra: hparams_search= says how to install it (lyricgen.cli.check_sweeper)
    _HydraOptunaSweeper = None

log = logging.getLogger("lyricgen.search")

if _HydraOptunaSweeper is not None:

    class OptunaSweeper(_HydraOptunaSweeper):
        """Hydra's Optuna sweeper, writing `trials.md` into the sweep directory when the search ends."""

        def setup(self, *, hydra_context, task_function, config) -> None:
            self.sweep_dir = Path(str(config.hydra.sweep.dir))
            self.searched = list(config.hydra.sweeper.params or {})  # the settings the trials differ in
            super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

        def sweep(self, arguments: list[str]) -> None:
            searched = self.searched + [a.split("=", 1)[0] for a in arguments if "(" in a.partition("=")[2]]
            try:
                super().sweep(arguments)
            except ValueError as e:
                if "No trials are completed" not in str(e):
                    raise
                print(
                    "error: no trial of the search completed (each 'Failed experiment' line above says why, a "
                    f"crash's traceback is in its trial's train.log under {self.sweep_dir}); fix the settings the "
                    "trials share and search again",
                    file=sys.stderr,
                )
                raise SystemExit(2) from None
            finally:  # also when the search stops early (Ctrl-C, a full disk): the trials done so far
                if self.sweep_dir.is_dir():
                    table = write_trials(self.sweep_dir, searched)
                    log.info("Trials: %s; the best settings: %s", table, self.sweep_dir / "optimization_results.yaml")
