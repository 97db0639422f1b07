"""mixopt: Bayesian optimization of training data mixtures.

The public face (imported lazily, so ``import mixopt`` stays cheap)::

    import mixopt
    config = mixopt.load_config("studies/default/study.yaml")
    study = mixopt.Study.open(config)            # or mixopt.Study.load(storage_url, name)
    recommendation = mixopt.recommend_study(study)   # the mixture to train for real
    space: mixopt.MixtureSpace = study.space

Extension points: ``mixopt.runners.Runner`` (with ``RunSpec`` and ``Evaluation``),
``mixopt.surrogates.Surrogate``, ``mixopt.search.Searcher``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "Study": "mixopt.study",
    "MixtureSpace": "mixopt.space",
    "Source": "mixopt.space",
    "Group": "mixopt.space",
    "load_config": "mixopt.config",
    "StudyConfig": "mixopt.config",
    "recommend_study": "mixopt.recommend",
    "Recommendation": "mixopt.recommend",
    "Observations": "mixopt.trials",
    "History": "mixopt.trials",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'mixopt' has no attribute '{name}'")
