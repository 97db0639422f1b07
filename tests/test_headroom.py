"""Metric selection's pure functions on hand-made observations (figures worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixopt import headroom
from mixopt.trials import Observations


def observations(weights, metrics, fidelities) -> Observations:
    n = len(weights)
    return Observations(np.arange(n), np.asarray(weights, dtype=float), np.zeros((n, 1)),
                        np.asarray(fidelities, dtype=object), tuple(metrics), ({},) * n, ({},) * n)


def test_signal_is_the_spread_of_mixture_means_and_noise_the_pooled_seed_sd():
    values = np.array([1.0, 3.0, 10.0, 12.0, 14.0, 20.0])
    ids = np.array([0, 0, 1, 1, 1, 2])
    signal, noise, replicated = headroom.signal_and_noise(values, ids)
    assert signal == pytest.approx(np.std([2.0, 12.0, 20.0], ddof=1))
    assert noise == pytest.approx(math.sqrt((2 + 8) / (1 + 2)))  # squares 1+1 and 4+0+4 over 1 + 2 dof
    assert replicated == 2


def test_assess_flags_saturated_at_chance_noisy_and_disagreeing_metrics():
    w = [[a, 1 - a] for a in (0.1, 0.3, 0.5, 0.7, 0.9)]
    rows, metrics, fidelities = [], [], []
    for seed in (0, 1):
        for i, weights in enumerate(w):
            rows.append(weights)
            fidelities.append("micro")
            metrics.append({
                "good_bpb": 1.0 + 0.1 * i + 0.001 * seed,          # signal 0.158, noise 0.0007
                "easy_acc": 0.995 - 0.001 * i + 0.0001 * seed,      # 0.3% from the ceiling
                "hard_acc": 0.25 + 0.02 * i + 0.001 * seed,         # clear signal, 2-8 points above chance 0.25
                "flat_acc": 0.25 + 0.001 * (i + seed),              # at chance
                "noisy_loss": 2.0 + 0.001 * i + (0.1 if seed else -0.1),
                "tokens_web": 100.0 * i, "train_loss_last": 3.0,    # bookkeeping: not assessed
            })
    for i, weights in enumerate(w):
        rows.append(weights)
        fidelities.append("full")
        metrics.append({"good_bpb": 0.9 + 0.1 * i, "easy_acc": 0.99, "hard_acc": 0.3 - 0.02 * i,
                        "flat_acc": 0.25, "noisy_loss": 2.0})
    found = {m.name: m for m in headroom.assess(observations(rows, metrics, fidelities), "micro", "full",
                                                {"*": 4}, {"good_bpb": "minimize"})}
    assert sorted(found) == ["easy_acc", "flat_acc", "good_bpb", "hard_acc", "noisy_loss"]
    assert found["good_bpb"].flags == () and found["good_bpb"].rank_correlation == pytest.approx(1.0)
    assert found["easy_acc"].flags == ("saturated",)
    assert found["easy_acc"].headroom == pytest.approx((1 - found["easy_acc"].mean) / 0.75)
    assert found["flat_acc"].flags[0] == "at chance"
    assert found["noisy_loss"].flags == ("noise-dominated",)  # constant at "full": no rank correlation
    assert found["hard_acc"].flags == ("fidelities disagree",) and found["hard_acc"].rank_correlation == pytest.approx(-1.0)
    assert [m.name for m in headroom.suggest(list(found.values()), 3)] == ["good_bpb"]
    assert found["good_bpb"].direction == "minimize" and found["hard_acc"].direction == "maximize"


def test_without_replicates_the_noise_is_unknown_and_said_so():
    obs = observations([[0.1, 0.9], [0.6, 0.4]], [{"bpb_web": 1.0}, {"bpb_web": 1.2}], ["micro", "micro"])
    (m,) = headroom.assess(obs, "micro")
    assert m.flags == ("no replicates",) and math.isnan(m.noise) and math.isnan(m.ratio)
    assert headroom.suggest([m], 3) == []


def test_the_comment_block_replaces_an_earlier_one_and_keeps_the_rest():
    text = "name: x\nseed: 0\n"
    first = headroom.with_block(text, headroom.BLOCK_START + " one\n" + headroom.BLOCK_END + "\n")
    second = headroom.with_block(first + "# a later comment\n", headroom.BLOCK_START + " two\n" + headroom.BLOCK_END + "\n")
    assert first == "name: x\nseed: 0\n\n" + headroom.BLOCK_START + " one\n" + headroom.BLOCK_END + "\n"
    assert second == "name: x\nseed: 0\n\n" + headroom.BLOCK_START + " two\n" + headroom.BLOCK_END + "\n# a later comment\n"
