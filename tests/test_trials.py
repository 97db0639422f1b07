"""The contract types' own helpers."""

from __future__ import annotations

import numpy as np

from mixopt.trials import History


def test_mean_at_averages_the_runs_of_one_mixture_and_knows_an_unrun_one():
    W = np.array([[0.5, 0.5], [0.2, 0.8], [0.5, 0.5 + 1e-9], [0.9, 0.1]])
    history = History(W, np.array([[1.0, 4.0], [9.0, 9.0], [3.0, 2.0], [7.0, 7.0]]), ("minimize", "maximize"))
    np.testing.assert_allclose(history.mean_at(np.array([0.5, 0.5])), [2.0, 3.0])
    assert history.mean_at(np.array([0.4, 0.6])) is None
    assert History.empty(2, ("minimize",)).mean_at(np.array([0.5, 0.5])) is None
