"""Searchers: propose batches of mixtures from the history of a study."""

from mixopt.registry import Registry
from mixopt.search.base import History, Searcher

SEARCHERS = Registry(
    "searcher",
    {
        "random": "mixopt.search.random:RandomSearcher",
    },
)

__all__ = ["SEARCHERS", "History", "Searcher"]
