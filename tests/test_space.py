"""MixtureSpace: constraint checks, sampling, projection and rounding, with property tests against an LP."""

from __future__ import annotations

import os
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from mixopt.errors import ConfigError, InfeasibleSpaceError
from mixopt.space import Group, MixtureSpace, Source

BUDGET = 100.0  # token budget of the generated spaces: caps rep * tokens / 100 land on a 0.01 grid


# -- generated spaces ---------------------------------------------------------------------------------
def grid(n: int) -> st.SearchStrategy[float]:
    """Multiples of 0.05 up to n/20: constraint data on a coarse grid keeps LP tolerances out of the way."""
    return st.integers(0, n).map(lambda k: k / 20)


@st.composite
def sources(draw, name: str) -> Source:
    kind = draw(st.sampled_from(["free", "free", "fixed"]))
    capped = draw(st.booleans())
    tokens = float(draw(st.integers(0, 60))) if capped else None
    max_repetition = float(draw(st.sampled_from([1, 2, 4]))) if capped else None
    if kind == "fixed":
        return Source(name, tokens=tokens, max_repetition=max_repetition, fixed_weight=draw(grid(10)))
    lo, hi = sorted([draw(grid(20)), draw(grid(20))])
    return Source(name, tokens=tokens, min_weight=lo, max_weight=hi, max_repetition=max_repetition)


@st.composite
def space_specs(draw) -> tuple[tuple[Source, ...], tuple[Group, ...]]:
    k = draw(st.integers(2, 6))
    names = [f"s{i}" for i in range(k)]
    srcs = tuple(draw(sources(n)) for n in names)
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=k, unique=True))
        lo, hi = sorted([draw(grid(20)), draw(grid(20))])
        groups.append(Group(f"g{g}", tuple(members), lo, hi))
    return srcs, tuple(groups)


def lp_feasible(srcs: tuple[Source, ...], groups: tuple[Group, ...], budget: float) -> bool:
    """Feasibility decided from the raw spec, written out as an LP (independent of mixopt's bounds code)."""
    k = len(srcs)
    index = {s.name: i for i, s in enumerate(srcs)}
    a_eq, b_eq, a_ub, b_ub, bounds = [np.ones(k)], [1.0], [], [], []
    for i, s in enumerate(srcs):
        if s.fixed_weight is not None:
            a_eq.append(np.eye(k)[i])
            b_eq.append(s.fixed_weight)
            bounds.append((0.0, 1.0))
        else:
            bounds.append((s.min_weight, s.max_weight))
        if s.tokens is not None and s.max_repetition is not None:
            a_ub.append(budget * np.eye(k)[i])  # tokens drawn from the source <= what repetition allows
            b_ub.append(s.max_repetition * s.tokens)
    for g in groups:
        row = np.zeros(k)
        row[[index[n] for n in g.sources]] = 1.0
        a_ub += [row, -row]
        b_ub += [g.max_weight, -g.min_weight]
    result = linprog(
        np.zeros(k), A_ub=np.array(a_ub) if a_ub else None, b_ub=b_ub or None,
        A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs",
    )
    assert result.status in (0, 2), result.message
    return result.status == 0


@st.composite
def disjoint_group_specs(draw) -> tuple[tuple[Source, ...], tuple[Group, ...]]:
    """Spaces whose groups share no source (decided without an LP by ``MixtureSpace``)."""
    k = draw(st.integers(2, 7))
    names = [f"s{i}" for i in range(k)]
    srcs = tuple(draw(sources(n)) for n in names)
    labels = draw(st.lists(st.integers(-1, 2), min_size=k, max_size=k))  # -1: in no group
    groups = []
    for g in sorted(set(labels) - {-1}):
        lo, hi = sorted([draw(grid(20)), draw(grid(20))])
        groups.append(Group(f"g{g}", tuple(n for n, label in zip(names, labels, strict=True) if label == g), lo, hi))
    return srcs, tuple(groups)


def build(spec) -> MixtureSpace | None:
    srcs, groups = spec
    try:
        return MixtureSpace(srcs, groups, token_budget=BUDGET)
    except InfeasibleSpaceError:
        return None


# A few dozen examples per property by default; MIXOPT_PROPERTY_EXAMPLES=2000 for a thorough search.
PROPERTY = settings(
    max_examples=int(os.environ.get("MIXOPT_PROPERTY_EXAMPLES", 30)), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(space_specs())
def test_space_is_rejected_exactly_when_the_lp_is_infeasible(spec):
    srcs, groups = spec
    assert (build(spec) is not None) == lp_feasible(srcs, groups, BUDGET)


@PROPERTY
@given(disjoint_group_specs())
def test_disjoint_groups_are_decided_exactly_without_an_lp(spec):
    srcs, groups = spec
    assert (build(spec) is not None) == lp_feasible(srcs, groups, BUDGET)


@st.composite
def feasible_spaces(draw) -> MixtureSpace:
    """Spaces built around an anchor mixture on the 0.05 grid, so they are feasible with constraints that
    often bind: fixed weights, bounds and caps at the anchor's weight, groups whose limits touch its totals."""
    k = draw(st.integers(2, 6))
    cuts = sorted(draw(st.lists(st.integers(0, 20), min_size=k - 1, max_size=k - 1)))
    anchor = np.diff([0, *cuts, 20])  # units of 0.05, summing to 20
    srcs = []
    for i, u in enumerate(anchor):
        name, kind = f"s{i}", draw(st.sampled_from(["free", "free", "fixed", "capped"]))
        if kind == "fixed":
            srcs.append(Source(name, fixed_weight=u / 20))
        elif kind == "capped":
            rep = draw(st.sampled_from([1, 2, 4]))
            tokens = float(-(-u * 5 // rep) + draw(st.integers(0, 10)))  # cap rep * tokens / 100 >= u / 20
            srcs.append(Source(name, tokens=tokens, max_repetition=float(rep), min_weight=draw(st.integers(0, u)) / 20))
        else:
            srcs.append(Source(name, min_weight=draw(st.integers(0, u)) / 20, max_weight=draw(st.integers(u, 20)) / 20))
    groups = []
    for g in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
        total = int(anchor[members].sum())
        lo, hi = draw(st.integers(0, total)), draw(st.integers(total, 20))
        groups.append(Group(f"g{g}", tuple(f"s{i}" for i in members), lo / 20, hi / 20))
    return MixtureSpace(tuple(srcs), tuple(groups), token_budget=BUDGET)


@PROPERTY
@given(feasible_spaces(), st.integers(0, 2**31 - 1))
def test_sampled_mixtures_are_feasible(space, seed):
    samples = space.sample(16, seed=seed)
    assert samples.shape == (16, space.dim)
    for w in samples:
        assert space.violations(w) == []


@PROPERTY
@given(feasible_spaces(), st.integers(0, 2**31 - 1))
def test_projected_points_are_feasible_and_feasible_points_stay_put(space, seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(0.2, 0.6, size=(4, space.dim))
    for w in space.project(points):
        assert space.violations(w) == []
    inside = space.sample(1, seed=seed)[0]
    np.testing.assert_allclose(space.project(inside), inside, atol=1e-6)


@PROPERTY
@given(feasible_spaces(), st.integers(0, 2**31 - 1), st.sampled_from([1e-2, 1e-3, 1e-4]))
def test_rounded_mixtures_are_feasible_decimals_summing_to_one(space, seed, granularity):
    rng = np.random.default_rng(seed)
    for w in [*space.sample(2, seed=seed), rng.dirichlet(np.ones(space.dim))]:
        rounded = space.round(w, granularity)
        assert space.violations(rounded) == []
        units = rounded / granularity
        np.testing.assert_allclose(units, np.round(units), atol=1e-6)
        assert sum(Decimal(repr(float(x))) for x in rounded) == 1


# -- each constraint type, with the message a user sees ------------------------------------------------
def test_min_max_and_fixed_weights_bound_each_source():
    space = MixtureSpace((Source("web", min_weight=0.3), Source("code", max_weight=0.2), Source("math", fixed_weight=0.1)))
    np.testing.assert_allclose(space.lower, [0.3, 0.0, 0.1])
    np.testing.assert_allclose(space.upper, [1.0, 0.2, 0.1])
    assert space.is_feasible(np.array([0.7, 0.2, 0.1]))
    assert space.violations(np.array([0.6, 0.3, 0.1])) == ["source 'code': weight 0.3 is above its upper bound 0.2"]
    assert space.violations(np.array([0.2, 0.2, 0.6]))[0] == "source 'web': weight 0.2 is below its lower bound 0.3"
    with pytest.raises(ConfigError, match="weights sum to 0.9"):
        space.check(np.array([0.6, 0.2, 0.1]))


def test_repetition_cap_is_tokens_times_epochs_over_budget():
    srcs = (Source("web", tokens=1e12, max_repetition=1), Source("math", tokens=1e9, max_repetition=4))
    space = MixtureSpace(srcs, token_budget=1e10)
    assert space.upper[1] == pytest.approx(0.4)  # 4 epochs x 1e9 tokens / 1e10 budget
    assert space.upper[0] == 1.0  # capped by the simplex, not by 100 epochs' worth
    assert not space.is_feasible(np.array([0.5, 0.5]))
    with pytest.raises(InfeasibleSpaceError, match="maximum weights sum to 0.04 < 1"):
        MixtureSpace((Source("a", tokens=1e8, max_repetition=2), Source("b", tokens=1e8, max_repetition=2)), token_budget=1e10)


def test_groups_bound_total_weight_of_their_sources():
    space = MixtureSpace(
        (Source("web"), Source("books"), Source("code")),
        (Group("anchor", ("web", "books"), min_weight=0.5), Group("code_cap", ("code",), max_weight=0.3)),
    )
    assert space.is_feasible(np.array([0.3, 0.3, 0.4])) is False
    assert space.violations(np.array([0.2, 0.2, 0.6])) == [
        "group 'anchor': total 0.4 is below its minimum 0.5",
        "group 'code_cap': total 0.6 is above its maximum 0.3",
    ]
    w = space.project(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(w, [0.35, 0.35, 0.3], atol=1e-6)  # the nearest point on both group faces


@pytest.mark.parametrize(
    ("srcs", "groups", "error", "message"),
    [
        ((Source("a", min_weight=0.7), Source("b", min_weight=0.6)), (), InfeasibleSpaceError, "minimum weights sum to 1.3 > 1"),
        ((Source("a", fixed_weight=0.5, tokens=1.0, max_repetition=1),), (), InfeasibleSpaceError, "fixed weight 0.5 is above its cap"),
        ((Source("a", min_weight=0.5, tokens=1.0, max_repetition=2), Source("b")), (), InfeasibleSpaceError, "above its repetition cap 0.2"),
        ((Source("a", max_weight=0.2), Source("b")), (Group("g", ("a",), min_weight=0.4),), InfeasibleSpaceError, "can reach only 0.2"),
        ((Source("a", min_weight=0.5), Source("b")), (Group("g", ("a",), max_weight=0.3),), InfeasibleSpaceError, "need at least 0.5"),
        ((Source("a"), Source("b"), Source("c")), (Group("x", ("a", "b"), min_weight=0.8), Group("y", ("b", "c"), min_weight=0.8), Group("z", ("a", "c"), min_weight=0.8)), InfeasibleSpaceError, "cannot hold together"),
        ((Source("web"), Source("code")), (Group("g", ("web", "cod"), min_weight=0.1),), ConfigError, "did you mean 'code'"),
        ((Source("a", tokens=-5.0),), (), ConfigError, "tokens must be a finite number >= 0"),
        ((Source("a"), Source("a")), (), ConfigError, "duplicate source names"),
        ((Source("a", min_weight=0.6, max_weight=0.4),), (), ConfigError, "need 0 <= min_weight <= max_weight <= 1"),
    ],
)
def test_bad_spaces_are_rejected_with_a_message_naming_the_problem(srcs, groups, error, message):
    with pytest.raises(error, match=message) as caught:
        MixtureSpace(srcs, groups, token_budget=10.0)
    assert "\n" not in str(caught.value)


def test_uniform_sampling_matches_the_simplex_marginals():
    space = MixtureSpace(tuple(Source(n) for n in "abcd"))
    samples = space.sample(20000, seed=1)
    np.testing.assert_allclose(samples.mean(axis=0), 0.25, atol=0.01)
    # Uniform on the 4-simplex: each weight is Beta(1, 3), P(w > 1/2) = (1/2)^3.
    assert np.mean(samples[:, 0] > 0.5) == pytest.approx(0.125, abs=0.01)
    np.testing.assert_array_equal(space.sample(5, seed=3), space.sample(5, seed=3))


def test_tight_polytope_uses_hit_and_run_and_stays_feasible():
    # Tight boxes make rejection from the simplex hopeless; the samples must still fill the box.
    srcs = tuple(Source(f"s{i}", min_weight=0.09, max_weight=0.11) for i in range(10))
    space = MixtureSpace(srcs)
    samples = space.sample(200, seed=0)
    assert all(space.is_feasible(w) for w in samples)
    assert samples.std(axis=0).min() > 0.003


def test_round_rejects_a_granularity_that_does_not_divide_one():
    space = MixtureSpace((Source("a"), Source("b")))
    with pytest.raises(ConfigError, match="must divide 1"):
        space.round(np.array([0.5, 0.5]), granularity=0.3)


# -- regressions found by the property tests -----------------------------------------------------------
def test_projection_and_sampling_on_a_polytope_without_interior():
    # s1 + s3 <= 0.3 and s2 <= 0.7 force s2 = 0.7 exactly; s0 is pinned at 0 by its bounds.
    space = MixtureSpace(
        (Source("s0", max_weight=0.0), Source("s1", max_weight=0.05), Source("s2", max_weight=0.7), Source("s3", max_weight=0.3)),
        (Group("g0", ("s0", "s3", "s1"), max_weight=0.3), Group("all", ("s0", "s1", "s2", "s3"))),
    )
    np.testing.assert_allclose(space.project(np.array([0.0, 0.05, 0.6, 0.35])), [0.0, 0.0, 0.7, 0.3], atol=1e-9)
    assert all(space.is_feasible(w) for w in space.sample(16, seed=0))


def test_rounding_meets_groups_that_pin_a_total():
    space = MixtureSpace(
        tuple(Source(f"s{i}") for i in range(5)),
        (Group("none_of_s0", ("s0",), max_weight=0.0), Group("exactly", ("s1", "s2", "s3"), min_weight=0.37, max_weight=0.37)),
    )
    w = space.round(np.array([0.29927267, 0.44877663, 0.00871792, 0.00099885, 0.24223394]), granularity=0.01)
    assert space.violations(w) == []
    assert sum(Decimal(repr(float(x))) for x in w) == 1 and w[0] == 0.0


def test_rounding_names_a_fixed_weight_that_is_off_the_grid():
    space = MixtureSpace((Source("a", fixed_weight=0.125), Source("b")))
    with pytest.raises(InfeasibleSpaceError, match="source 'a' has no grid value within its bounds"):
        space.round(np.array([0.125, 0.875]), granularity=0.01)
    np.testing.assert_allclose(space.round(np.array([0.125, 0.875]), granularity=0.001), [0.125, 0.875])


def test_a_hit_and_run_batch_is_as_spread_as_independent_draws():
    """Tight caps force hit-and-run; a batch of 8 from one chain used to sit at half the spread of
    independent draws (mean L1 distance to the batch mean), since consecutive points were chained."""
    from mixopt.space import _hit_and_run

    caps = np.random.default_rng(0).uniform(0.04, 0.15, 19)
    space = MixtureSpace(tuple(Source(f"s{k}", max_weight=float(c)) for k, c in enumerate(caps / caps.sum() * 1.6)))

    def spread(W: np.ndarray) -> float:
        return float(np.abs(W - W.mean(axis=0)).sum(axis=1).mean())

    far_apart = np.vstack([_hit_and_run(space, 1, seed) for seed in range(100, 164)])  # one point per chain
    batches = [spread(_hit_and_run(space, 8, seed)) for seed in range(6)]
    assert np.mean(batches) >= 0.85 * spread(far_apart)
