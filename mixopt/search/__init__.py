"""Searchers: propose batches of mixtures from the history of a study."""

from mixopt.registry import Registry
from mixopt.search.base import Searcher, propose_within
from mixopt.trials import History

SEARCHERS = Registry(
    "searcher",
    {
        "random": "mixopt.search.random:RandomSearcher",
        "botorch": "mixopt.search.botorch:BoTorchSearcher",
        "optuna-tpe": "mixopt.search.optuna:TPESearcher",
        "optuna-gp": "mixopt.search.optuna:GPSearcher",
        "optuna-nsga2": "mixopt.search.optuna:NSGA2Searcher",
    },
)

__all__ = ["SEARCHERS", "History", "Searcher", "propose_within"]
