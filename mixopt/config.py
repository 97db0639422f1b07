"""Study configs: ``studies/<name>/study.yaml`` -> a typed, validated ``StudyConfig``.

Loading is strict: an unknown key is an error with a "did you mean", a value of the wrong type names
its key path, and a space that can hold no mixture is rejected here, before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mixopt.candidates import load_candidates
from mixopt.errors import ConfigError, check_path_name, shown
from mixopt.pareto import parse_pick_rule
from mixopt.space import TOKEN_DTYPES, Group, MixtureSpace, Source
from mixopt.surrogates import DEFAULT_SURROGATE
from mixopt.trust import Gates

DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class SourceConfig:
    """One data source: how many tokens it holds, the bounds on its weight, and where its data lives."""

    name: str
    """The source's name: a trial parameter and an export's source name."""
    tokens: float | None = None
    """Tokens the source holds; with ``max_repetition`` it caps the weight at a fidelity's budget."""
    min_weight: float = 0.0
    """Lowest share of the mixture's tokens, in [0, 1]."""
    max_weight: float = 1.0
    """Highest share of the mixture's tokens, in [0, 1]."""
    max_repetition: float | None = None
    """Epochs allowed: ``weight x fidelity tokens <= max_repetition x tokens`` (None: no cap)."""
    fixed_weight: float | None = None
    """A weight the searcher never moves (None: searched)."""
    paths: list[str] = field(default_factory=list)
    """Files, folders or globs of the source's data (jsonl, parquet, text, save_to_disk folders, token files)."""
    token_dtype: str | None = None
    """Raw token files' dtype (uint16, uint32, int32, int64); ``.npy`` files with a header name their own."""
    eos_token_id: int | None = None
    """The id separating the token files' documents (None: the model tokenizer's end-of-text id)."""


@dataclass(frozen=True)
class ConstraintConfig:
    """A group constraint: ``min <= sum of the sources' weights <= max``."""

    name: str
    """The group's name (in error messages and the report)."""
    sources: list[str]
    """The sources whose weights are summed."""
    min: float = 0.0
    """Lowest total weight of the group, e.g. an anchor (replay) floor."""
    max: float = 1.0
    """Highest total weight of the group."""


@dataclass(frozen=True)
class ObjectiveConfig:
    """``metric``: what the runner reports. With ``parts`` (two or more metrics the runner reports, e.g. domain
    losses), the metric is their mean (computed when the runner does not report it), and the searcher
    models each part (History.parts)."""

    name: str
    """The objective's name: the Optuna metric name, and what ``pick`` rules such as ``best:NAME`` refer to."""
    metric: str
    """The metric the runner reports (or the mean of ``parts``)."""
    direction: str = "minimize"
    """``minimize`` (losses, bits per byte) or ``maximize`` (accuracies)."""
    parts: list[str] = field(default_factory=list)
    """Two or more reported metrics whose mean is ``metric``, modelled one by one (empty: none)."""


@dataclass(frozen=True)
class FidelityConfig:
    """A kind of run: ``tokens`` is its training token budget; ``model`` an optional checkpoint or model name.
    ``match_repetition``: a larger fidelity whose repetition this one reproduces: each source's training
    pool is subsampled to ``tokens / target tokens`` of it, so a mixture repeats every source as many epochs
    here as at the target (and the repetition caps are the target's)."""

    name: str
    """The fidelity's name (a trial's ``fidelity`` attribute)."""
    tokens: float
    """Training tokens of one run at this fidelity; the repetition caps are taken at this budget."""
    model: str | None = None
    """The base checkpoint (a local transformers folder) runs start from (None: the runner's default)."""
    match_repetition: str | None = None
    """A larger fidelity whose epochs per source this one reproduces by subsampling each source's pool."""
    proxy: str | None = None
    """``merge``: score a mixture without training, by merging experts (the base continue-trained on each
    source alone for ``tokens`` tokens, once) as ``theta_base + merge_scale * sum_k w_k (theta_k - theta_base)``
    and evaluating that model (microanneal runner only). None: every run trains."""
    merge_scale: float = 1.0
    """The task-arithmetic scale of a ``proxy: merge`` fidelity (1: the weighted mean of the experts)."""


@dataclass(frozen=True)
class ComponentConfig:
    """A searcher, runner, surrogate or executor chosen by registered name, with its options."""

    name: str
    """A registered name (e.g. ``botorch``, ``synthetic``, ``local``) or ``module:Class``; a bare string means
    the name with no options."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the component's constructor."""


@dataclass(frozen=True)
class ScreeningConfig:
    """Source screening: each candidate at ``share`` on top of the ``anchor`` mixture, against the anchor alone."""

    anchor: dict[str, float]
    """The baseline mixture, ``{source: weight}`` summing to 1."""
    candidates: list[str] = field(default_factory=list)
    """Sources to screen (empty: every source outside the anchor)."""
    share: float = 0.2
    """Each candidate's weight on top of the anchor, in (0, 1); the anchor keeps the rest."""
    replicates: int = 2
    """Runs per arm (seeds), for standard errors of the lifts."""


@dataclass(frozen=True)
class ReplicatesConfig:
    """Mixtures run with several seeds at the search fidelity (``mixopt.replicates``): the searcher learns
    the run-to-run noise of every observation from them when the runner reports no standard errors."""

    mixtures: list[Any] = field(default_factory=lambda: ["prior", "incumbent"])
    """``prior`` (the searcher's natural mixture), ``baseline`` (the config's), ``incumbent`` (the
    recommendation at ``incumbent_at``) or a ``{source: weight}`` mixture."""
    seeds: int = 3
    """Runs of each mixture, each with its own seed (at least 2); counted in ``n_trials``."""
    incumbent_at: float = 0.5
    """Share of ``n_trials`` complete before the incumbent is replicated, in (0, 1)."""


FIDELITY_POLICIES = ("rounds", "cost-aware")
COST_UNITS = ("tokens", "seconds")


@dataclass(frozen=True)
class BudgetConfig:
    """What a ``fidelity_policy: cost-aware`` study may spend, in total, on its runs (:mod:`mixopt.costaware`)."""

    cost: float
    """The total, in ``unit``s: every run started counts, the final run at the target fidelity included."""
    unit: str = "tokens"
    """``tokens`` (a run costs its fidelity's tokens) or ``seconds`` (each fidelity's mean measured run time)."""
    initial: int | None = None
    """Runs at the search fidelity in the initial design (None: the number of sources + 1)."""
    initial_target: int = 2
    """Of those mixtures, how many are also run at the target fidelity first (the model's first look at it)."""


@dataclass(frozen=True)
class PromoteConfig(Gates):
    """What a round checks before its integration run (:mod:`mixopt.trust`): the gates (``max_distance``,
    ``min_rank_corr``, ``max_movement``, ``min_coverage_80``; none by default: the checks are computed and
    logged only). A candidate that fails one first runs ``local_batch`` microanneals around itself (itself
    among them; default: ``batch_size``), then is promoted with the refitted model. ``within``: candidates
    only within this total-variation distance of the best quarter of the measured runs."""

    local_batch: int | None = None
    """Microanneals around a candidate that fails a gate (None: ``batch_size``)."""
    within: float | None = None
    """Largest total-variation distance of a candidate to the best quarter of the measured runs (None: any)."""


@dataclass(frozen=True)
class ReuseConfig:
    """Warm start from an earlier study whose sources may differ (see ``mixopt.reuse``).

    ``study``: the old study's config file (relative to this config's folder); or ``storage`` and
    ``study_name`` (these also override the old config's). ``map``: old source -> a new source (renamed),
    a list of new sources (a split in proportion to their ``tokens``) or ``{new: share}`` (explicit
    shares summing to 1); an unlisted source maps to the new source of its name, if any.
    ``drop_unmapped_above``: a trial that gave old sources with no counterpart more than this weight is
    skipped; up to it, that weight is dropped and the rest renormalized. ``max_projection``: the largest
    L1 distance an imported mixture may move to satisfy the new constraints (farther: skipped).
    """

    study: str | None = None
    """The old study's config file, relative to this config's folder."""
    storage: str | None = None
    """The old study's storage URL (instead of, or overriding, its config's)."""
    study_name: str | None = None
    """The old study's name (instead of, or overriding, its config's)."""
    map: dict[str, Any] = field(default_factory=dict)
    """Old source -> a new source, a list of new sources (split by tokens) or ``{new: share}``."""
    drop_unmapped_above: float = 0.0
    """Skip a trial whose weight on old sources with no counterpart exceeds this; up to it, renormalize."""
    max_projection: float = 0.05
    """Largest L1 distance a mapped mixture may move to meet the new constraints (farther: skipped)."""


@dataclass(frozen=True)
class StudyConfig:
    """A whole study: the mixture space (sources, constraints), what to measure (objectives, fidelities),
    the components (searcher, runner, executor, surrogate) and the schedule (trials, rounds, merges)."""

    name: str
    """The study's name in its storage; also names its runs/, exports/ and report/ files."""
    sources: list[SourceConfig]
    """The data sources whose weights make the mixture."""
    objectives: list[ObjectiveConfig]
    """What to optimize: one Optuna objective each, in this order."""
    fidelities: list[FidelityConfig]
    """Kinds of run, cheapest first: the first is searched (microanneals), the last is the integration run."""
    runner: ComponentConfig
    """What measures a mixture: ``synthetic``, ``table``, ``microanneal``, ``command`` or ``module:Class``."""
    constraints: list[ConstraintConfig] = field(default_factory=list)
    """Bounds on the total weight of groups of sources."""
    searcher: ComponentConfig = field(default_factory=lambda: ComponentConfig("botorch"))
    """What proposes mixtures: ``botorch``, ``optuna-tpe``, ``optuna-gp``, ``optuna-nsga2``, ``random``."""
    executor: ComponentConfig = field(default_factory=lambda: ComponentConfig("local"))
    """Where runs go: ``local`` (process pool), ``serial``, ``ray``, ``slurm``."""
    storage: str | None = None
    """Optuna storage URL (None: SQLite ``study.db`` beside the config)."""
    batch_size: int = 4
    """Mixtures proposed at once (and runs in flight)."""
    n_trials: int = 20
    """Completed trials at the search fidelity to reach."""
    seed: int = 0
    """Seeds numpy's SeedSequence; every batch is drawn from its stream at the trial count."""
    granularity: float = 1e-4
    """Exported weights are multiples of this and sum to exactly 1, in (0, 0.1]."""
    max_failures: int | None = None
    """Failed trials after which the run stops (None: ``max(n_trials, 3)``)."""
    screening: ScreeningConfig | None = None
    """Source screening for ``mixopt screen`` (None: no screening)."""
    rounds: int | None = None
    """Integration rounds (OLMo 3's second loop): each runs ``n_trials / rounds`` microanneals, refits the
    surrogate and promotes the ``pick`` of the predicted front to a run at the last fidelity (None: search only)."""
    surrogate: ComponentConfig = field(default_factory=lambda: ComponentConfig(DEFAULT_SURROGATE))
    """The regressor fitted per objective (fidelity as a feature) for the report and the rounds."""
    pick: str = "knee"
    """The rule that picks from a front: ``knee``, ``best:OBJECTIVE`` or ``chebyshev:w1,w2,...``."""
    baseline: dict[str, float] | None = None
    """A reference mixture ``{source: weight}``: ``best:`` picks and the recommendation may be worse than it by
    at most ``epsilon`` on any objective (None: no such bound)."""
    epsilon: float = 0.0
    """Allowed regression against ``baseline``, in the objectives' units."""
    merge_seeds: int | None = None
    """After the last round, run the recommended mixture with this many seeds at the integration fidelity and
    average their checkpoints (``mixopt.merge``); needs ``rounds`` (None: no merge)."""
    promote: PromoteConfig = field(default_factory=PromoteConfig)
    """What a round checks before its integration run."""
    fidelity_policy: str = "rounds"
    """How runs get their fidelity: ``rounds`` (the searcher at the first fidelity, the ``rounds``' promotions at
    the last) or ``cost-aware`` (a multi-fidelity model chooses each run's mixture and fidelity under
    ``budget``, then one promotion to the last fidelity; ``n_trials`` and ``rounds`` unused)."""
    budget: BudgetConfig | None = None
    """The total cost of a ``cost-aware`` study's runs (None: no cost-aware policy)."""
    reuse: ReuseConfig | None = None
    """Warm start from an earlier study whose sources may differ (None: none)."""
    replicates: ReplicatesConfig | None = None
    """Mixtures run with several seeds for the noise model (None: none)."""
    candidates: str | None = None
    """A CSV of the mixtures to choose among (one column per source; path relative to the config): every searcher
    proposes, and the recommendation picks, only these rows (None: the whole polytope). See mixopt.candidates."""
    description: str = ""
    """Free text shown with the study."""
    # Set by the loader, not by the YAML: where the file lives and its text (stored with the study).
    directory: Path = field(default=Path("."), compare=False, metadata={"internal": True})
    # Spaces by token budget, built on first use (each replace() of the config starts a fresh cache).
    _spaces: dict[tuple[float, float], MixtureSpace] = field(default_factory=dict, init=False, repr=False, compare=False,
                                                       metadata={"internal": True})
    # The checked candidate mixtures (one array, read on first use), when ``candidates`` is set.
    _candidates: list[np.ndarray] = field(default_factory=list, init=False, repr=False, compare=False,
                                          metadata={"internal": True})
    text: str = field(default="", compare=False, repr=False, metadata={"internal": True})

    @property
    def search_fidelity(self) -> FidelityConfig:
        """The cheap fidelity the searcher proposes at (the first listed)."""
        return self.fidelities[0]

    def fidelity(self, name: str) -> FidelityConfig:
        for f in self.fidelities:
            if f.name == name:
                return f
        raise ConfigError(f"unknown fidelity '{name}': this study has {[f.name for f in self.fidelities]}")

    def space(self, fidelity: str | None = None) -> MixtureSpace:
        """The mixture space at a fidelity's token budget (default: the search fidelity); a budget of 0
        tokens (an evaluation without training, such as of merged seeds) has no repetition caps. At a
        fidelity that matches another's repetition, each source's tokens are its pool's (a fraction of
        them), so the caps are the target's."""
        fid = self.fidelity(fidelity) if fidelity else self.search_fidelity
        key = (fid.tokens, self.pool_share(fid.name))
        if key not in self._spaces:  # built once per budget (with groups, its check solves an LP)
            self._spaces[key] = self._build_space(*key)
        return self._spaces[key]

    def pool_share(self, fidelity: str) -> float:
        """The share of each source's training pool a run at ``fidelity`` draws from: its tokens over those
        of the fidelity whose repetition it matches (1 when it matches none)."""
        fid = self.fidelity(fidelity)
        return fid.tokens / self.fidelity(fid.match_repetition).tokens if fid.match_repetition else 1.0

    def pool_fraction(self, fidelity: str) -> dict[str, float]:
        """``RunSpec.pool_fraction`` at ``fidelity``: every source's pool share (empty when it matches none)."""
        share = self.pool_share(fidelity)
        return {s.name: share for s in self.sources} if share < 1 else {}

    def _build_space(self, budget: float, pool_share: float = 1.0) -> MixtureSpace:
        space = self._polytope(budget, pool_share)
        if self.candidates is None:
            return space
        if not self._candidates:  # read and checked once, against the polytope of the search fidelity
            search = self.search_fidelity
            checked_in = self._polytope(search.tokens, self.pool_share(search.name))
            self._candidates.append(load_candidates(self.directory / self.candidates, checked_in, self.granularity))
        return dataclasses.replace(space, candidates=self._candidates[0])

    def _polytope(self, budget: float, pool_share: float) -> MixtureSpace:
        return MixtureSpace(
            sources=tuple(
                Source(s.name, None if s.tokens is None else s.tokens * pool_share, s.min_weight, s.max_weight,
                       s.max_repetition, s.fixed_weight, tuple(s.paths), s.token_dtype, s.eos_token_id)
                for s in self.sources
            ),
            groups=tuple(Group(c.name, tuple(c.sources), c.min, c.max) for c in self.constraints),
            token_budget=budget or None,
        )

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(o.direction for o in self.objectives)

    @property
    def storage_url(self) -> str:
        """The configured storage, or SQLite in the study's directory."""
        return self.storage or f"sqlite:///{(self.directory / 'study.db').resolve()}"


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study YAML file; raises ``ConfigError`` with one clear line."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.yaml"
    if not path.is_file():
        raise ConfigError(f"no study config at {path}: pass a study.yaml file or a folder holding one")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}): "
                          "save the study config as UTF-8") from None
    return parse_config(text, directory=path.resolve().parent)  # absolute: runs may change folder


def parse_config(text: str, directory: Path = Path(".")) -> StudyConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a reader error (a character YAML forbids) has no mark
        where = f" at line {mark.line + 1}" if mark else f" at character {position}" if position is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"study config is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError("study config must be a YAML mapping with keys such as name, sources, objectives")
    config = _build(StudyConfig, data, "")
    config = dataclasses.replace(config, directory=directory, text=text)
    validate(config)
    return config


def validate(config: StudyConfig) -> None:
    """Checks that span sections; the space itself is checked at every fidelity's budget."""
    check_path_name(config.name)
    _check_printable(config)
    _check_path_names(config)
    if not config.objectives:
        raise ConfigError("objectives: list at least one objective (name, metric, direction)")
    if not config.fidelities:
        raise ConfigError("fidelities: list at least one fidelity (name, tokens)")
    for section, items in (("objectives", config.objectives), ("fidelities", config.fidelities)):
        names = [item.name for item in items]
        if len(set(names)) != len(names):
            raise ConfigError(f"{section}: names must be unique (got {names})")
    for o in config.objectives:
        if o.direction not in DIRECTIONS:
            raise ConfigError(f"objective '{o.name}': direction must be minimize or maximize (got '{o.direction}')")
    _validate_parts(config.objectives)
    for f in config.fidelities:
        if not f.tokens > 0:
            raise ConfigError(f"fidelity '{f.name}': tokens must be > 0 (got {f.tokens})")
    _validate_matching(config.fidelities)
    _validate_proxies(config)
    for s in config.sources:
        if s.token_dtype is not None and s.token_dtype not in TOKEN_DTYPES:
            hint = difflib.get_close_matches(s.token_dtype, TOKEN_DTYPES, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"choose one of {', '.join(TOKEN_DTYPES)}"
            raise ConfigError(f"source '{s.name}': unknown token_dtype '{s.token_dtype}': {fix}")
        if s.eos_token_id is not None and s.eos_token_id < 0:
            raise ConfigError(f"source '{s.name}': eos_token_id must be a token id >= 0 (got {s.eos_token_id})")
    _validate_promote(config.promote)
    for key in ("batch_size", "n_trials"):
        if getattr(config, key) < 1:
            raise ConfigError(f"{key} must be >= 1 (got {getattr(config, key)})")
    if not 0 < config.granularity <= 0.1:
        raise ConfigError(f"granularity must be in (0, 0.1] (got {config.granularity})")
    for f in config.fidelities:
        config.space(f.name)
    if config.screening is not None:
        validate_screening(config.screening, [s.name for s in config.sources])
    if config.rounds is not None:
        if config.rounds < 1:
            raise ConfigError(f"rounds must be >= 1 (got {config.rounds})")
        if len(config.fidelities) < 2:
            raise ConfigError("rounds need an integration fidelity: list it after the microanneal one in fidelities")
    validate_fidelity_policy(config)
    if config.merge_seeds is not None:
        if config.rounds is None and config.fidelity_policy != "cost-aware":
            raise ConfigError("merge_seeds needs rounds (or fidelity_policy: cost-aware): it merges seeds of the "
                              "promoted mixture")
        if config.merge_seeds < 2:
            raise ConfigError(f"merge_seeds must be >= 2 (got {config.merge_seeds}): a merge needs two checkpoints")
    if config.reuse is not None:
        validate_reuse(config.reuse, {s.name: s.tokens for s in config.sources})
    if config.baseline is not None:
        config.space().check(config.space().from_dict(config.baseline), tol=1e-6)
    if config.replicates is not None:
        validate_replicates(config)
    if config.epsilon < 0:
        raise ConfigError(f"epsilon must be >= 0 (got {config.epsilon})")
    if config.seed < 0:
        raise ConfigError(f"seed must be >= 0 (got {config.seed}): it seeds numpy's SeedSequence")
    parse_pick_rule(config.pick, [o.name for o in config.objectives])


def validate_fidelity_policy(config: StudyConfig) -> None:
    """``fidelity_policy`` known; ``cost-aware`` with two fidelities or more, no ``rounds`` and a ``budget``
    that pays for its initial design and the final run at the target fidelity."""
    policy, budget = config.fidelity_policy, config.budget
    if policy not in FIDELITY_POLICIES:
        hint = difflib.get_close_matches(str(policy), FIDELITY_POLICIES, n=1)
        fix = f"did you mean '{hint[0]}'?" if hint else f"choose one of {', '.join(FIDELITY_POLICIES)}"
        raise ConfigError(f"unknown fidelity_policy {shown(policy)}: {fix}")
    if policy != "cost-aware":
        if budget is not None:
            raise ConfigError("budget is the total cost of a fidelity_policy: cost-aware study: add that policy or remove budget")
        return
    if len(config.fidelities) < 2:
        raise ConfigError("fidelity_policy: cost-aware chooses between fidelities: list at least two (cheapest first)")
    if config.rounds is not None:
        raise ConfigError("fidelity_policy: cost-aware chooses the fidelity of every run itself: remove rounds")
    if budget is None:
        raise ConfigError("fidelity_policy: cost-aware needs a budget: add budget: {cost: TOTAL, unit: tokens}")
    if budget.unit not in COST_UNITS:
        raise ConfigError(f"budget.unit is {shown(budget.unit)}: choose one of {', '.join(COST_UNITS)}")
    if budget.initial is not None and budget.initial < 2:
        raise ConfigError(f"budget.initial must be >= 2 (got {budget.initial}): the model needs two runs to start")
    initial = initial_runs(config)
    if not 0 <= budget.initial_target <= initial:
        raise ConfigError(f"budget.initial_target must be between 0 and budget.initial ({initial}); got {budget.initial_target}")
    if not budget.cost > 0:
        raise ConfigError(f"budget.cost must be > 0 (got {budget.cost})")
    if config.surrogate.name == "multifidelity" and budget.initial_target < 3:
        raise ConfigError("surrogate multifidelity needs 3 runs at the target fidelity before the promotion: set "
                          "budget.initial_target to 3 or more, or choose another surrogate")
    if budget.unit == "tokens":
        least = initial * config.search_fidelity.tokens + (budget.initial_target + 1) * config.fidelities[-1].tokens
        if budget.cost < least:
            raise ConfigError(f"budget.cost {budget.cost:g} tokens does not pay for the initial design and the final "
                              f"run at '{config.fidelities[-1].name}' ({least:g} tokens): raise it or lower budget.initial")


def initial_runs(config: StudyConfig) -> int:
    """Search-fidelity runs in a cost-aware study's initial design."""
    assert config.budget is not None
    return config.budget.initial if config.budget.initial is not None else len(config.sources) + 1


REPLICATE_NAMES = ("prior", "baseline", "incumbent")


def validate_replicates(config: StudyConfig) -> None:
    replicates = config.replicates
    assert replicates is not None
    if replicates.seeds < 2:
        raise ConfigError(f"replicates.seeds must be >= 2 (got {replicates.seeds}): a replicate needs a second seed")
    if not 0 < replicates.incumbent_at < 1:
        raise ConfigError(f"replicates.incumbent_at must be in (0, 1) (got {replicates.incumbent_at})")
    if not replicates.mixtures:
        raise ConfigError("replicates.mixtures is empty: list prior, baseline, incumbent or {source: weight} mixtures")
    for i, entry in enumerate(replicates.mixtures):
        if isinstance(entry, dict):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry.values()):
                raise ConfigError(f"replicates.mixtures[{i}]: weights must be numbers (got {_describe(entry)})")
            space = config.space()
            space.check(space.from_dict(entry), tol=1e-6)
        elif entry not in REPLICATE_NAMES:
            raise ConfigError(f"replicates.mixtures[{i}] is {_describe(entry)}: give one of "
                              f"{', '.join(REPLICATE_NAMES)} or a {{source: weight}} mixture")
        elif entry == "baseline" and config.baseline is None:
            raise ConfigError("replicates.mixtures names baseline, but the config has no baseline: add one or drop it")
    named = [e for e in replicates.mixtures if isinstance(e, str)]
    if len(set(named)) != len(named):
        raise ConfigError(f"replicates.mixtures: each name at most once (got {named}); raise seeds for more runs")


def _check_printable(config: StudyConfig) -> None:
    """Names and metrics hold no line break, tab, NUL or other control character: they are echoed in
    one-line errors, folders and table columns."""
    named = [("sources", s.name) for s in config.sources]
    named += [("constraints", text) for c in config.constraints for text in (c.name, *c.sources)]
    named += [("objectives", text) for o in config.objectives for text in (o.name, o.metric, *o.parts)]
    named += [("fidelities", f.name) for f in config.fidelities]
    named += [(key, getattr(config, key).name) for key in ("searcher", "runner", "executor", "surrogate")]
    for section, text in named:
        if not text.isprintable():
            raise ConfigError(f"{section}: {text!r} holds a control character (a line break, tab or NUL); "
                              "use a printable name")


def _check_path_names(config: StudyConfig) -> None:
    """Every name that may become a path (:func:`check_path_name`). Metric names are exempt: they are table
    columns (RegMix's are ``metric/<domain>``) and never name a file."""
    named = [("source", s.name) for s in config.sources]
    named += [("objective", o.name) for o in config.objectives]
    named += [("fidelity", f.name) for f in config.fidelities]
    if config.reuse is not None:
        named += [("reuse.map source", str(old)) for old in config.reuse.map]
        named += [("reuse.study_name", config.reuse.study_name)] if config.reuse.study_name is not None else []
    for what, name in named:
        check_path_name(name, what)


def validate_screening(screening: ScreeningConfig, names: list[str]) -> None:
    for source in [*screening.anchor, *screening.candidates]:
        if source not in names:
            hint = difflib.get_close_matches(source, names, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"known sources: {', '.join(names)}"
            raise ConfigError(f"screening names unknown source '{source}': {fix}")
    weights = list(screening.anchor.values())
    if not weights or not all(isinstance(w, (int, float)) and w >= 0 for w in weights) or abs(sum(weights) - 1) > 1e-6:
        raise ConfigError(f"screening.anchor must map sources to weights >= 0 that sum to 1 (got {shown(screening.anchor)})")
    if not 0 < screening.share < 1:
        raise ConfigError(f"screening.share must be in (0, 1) (got {screening.share})")
    if screening.replicates < 1:
        raise ConfigError(f"screening.replicates must be >= 1 (got {screening.replicates})")


def validate_reuse(reuse: ReuseConfig, new_tokens: dict[str, float | None]) -> None:
    """Checks of the ``reuse`` section that need only this config (old source names are checked on use)."""
    if reuse.study is None and (reuse.storage is None or reuse.study_name is None):
        raise ConfigError("reuse: name the old study with study: PATH/study.yaml, or with storage: URL and study_name: NAME")
    if not 0 <= reuse.drop_unmapped_above < 1:
        raise ConfigError(f"reuse.drop_unmapped_above must be in [0, 1) (got {reuse.drop_unmapped_above})")
    if not 0 <= reuse.max_projection <= 2:
        raise ConfigError(f"reuse.max_projection must be in [0, 2] (an L1 distance; got {reuse.max_projection})")
    for old, target in reuse.map.items():
        where = f"reuse.map.{old}"
        if isinstance(target, str):
            target = [target]
        if isinstance(target, list):
            if not target or not all(isinstance(t, str) for t in target) or len(set(target)) != len(target):
                raise ConfigError(f"{where}: expected a new source, a list of distinct new sources or {{source: share}}")
        elif isinstance(target, dict):
            shares = list(target.values())
            if not shares or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in shares) \
                    or abs(sum(shares) - 1) > 1e-6:
                raise ConfigError(f"{where}: shares must be numbers >= 0 that sum to 1 (got {shown(target)})")
        else:
            raise ConfigError(f"{where}: expected a new source, a list of new sources or {{source: share}}, got {_describe(target)}")
        for name in target:
            if name not in new_tokens:
                hint = difflib.get_close_matches(str(name), list(new_tokens), n=1)
                fix = f"did you mean '{hint[0]}'?" if hint else f"this study's sources: {', '.join(new_tokens)}"
                raise ConfigError(f"{where}: '{name}' is not a source of this study: {fix}")
        if isinstance(target, list) and len(target) > 1:
            untokened = [name for name in target if not new_tokens[name]]
            if untokened:
                raise ConfigError(f"{where}: a split by tokens needs tokens > 0 on {', '.join(untokened)}; "
                                  f"or give explicit shares, e.g. {{{target[0]}: 0.5, ...}}")


PROXIES = ("merge",)
MERGING_RUNNERS = ("microanneal",)  # runners that score a mixture by merging single-source experts


def _validate_proxies(config: StudyConfig) -> None:
    """``proxy`` known and run by a runner that merges; ``merge_scale`` > 0, set only with ``proxy: merge``."""
    for f in config.fidelities:
        if f.proxy is None:
            if f.merge_scale != 1.0:
                raise ConfigError(f"fidelity '{f.name}': merge_scale is the scale of a merge proxy: add proxy: merge "
                                  "or remove merge_scale")
            continue
        if f.proxy not in PROXIES:
            raise ConfigError(f"fidelity '{f.name}': unknown proxy {shown(f.proxy)}: the one proxy is merge")
        if config.runner.name not in MERGING_RUNNERS:
            raise ConfigError(f"fidelity '{f.name}': proxy: merge needs the microanneal runner (runner "
                              f"'{config.runner.name}' cannot merge checkpoints): set runner: microanneal or remove proxy")
        if not f.merge_scale > 0:
            raise ConfigError(f"fidelity '{f.name}': merge_scale must be > 0 (got {f.merge_scale})")


def _validate_matching(fidelities: list[FidelityConfig]) -> None:
    """``match_repetition`` names another fidelity, with more tokens, that matches none itself."""
    by_name = {f.name: f for f in fidelities}
    for f in fidelities:
        if f.match_repetition is None:
            continue
        target = by_name.get(f.match_repetition)
        if target is None:
            others = [n for n in by_name if n != f.name]
            hint = difflib.get_close_matches(f.match_repetition, others, n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"fidelities: {', '.join(others) or 'none other'}"
            raise ConfigError(f"fidelity '{f.name}': match_repetition names unknown fidelity '{f.match_repetition}': {fix}")
        if not target.tokens > f.tokens:
            raise ConfigError(f"fidelity '{f.name}': match_repetition names '{target.name}' of {target.tokens:g} tokens, "
                              f"not more than its own {f.tokens:g}: name a larger fidelity (the one this run stands in for)")
        if target.match_repetition is not None:
            raise ConfigError(f"fidelity '{f.name}': match_repetition names '{target.name}', which matches "
                              f"'{target.match_repetition}' itself: name the final target")


def _validate_promote(promote: PromoteConfig) -> None:
    """Each gate and option of ``promote`` in its range."""
    ranges = {"max_distance": (0.0, 1.0), "min_rank_corr": (-1.0, 1.0), "max_movement": (0.0, 1.0),
              "min_coverage_80": (0.0, 1.0), "within": (0.0, 1.0)}
    for key, (low, high) in ranges.items():
        value = getattr(promote, key)
        if value is not None and not low <= value <= high:
            raise ConfigError(f"promote.{key} must be between {low:g} and {high:g} (got {value})")
    if promote.local_batch is not None and promote.local_batch < 1:
        raise ConfigError(f"promote.local_batch must be >= 1 (got {promote.local_batch})")


def _validate_parts(objectives: list[ObjectiveConfig]) -> None:
    """Each objective's parts: two or more distinct metrics, not its own metric, in no other objective."""
    owner: dict[str, str] = {}
    for o in objectives:
        if not o.parts:
            continue
        if len(o.parts) < 2 or len(set(o.parts)) != len(o.parts):
            raise ConfigError(f"objective '{o.name}': parts must list two or more distinct metrics whose mean is "
                              f"'{o.metric}' (got {o.parts}), or be left out")
        if o.metric in o.parts:
            raise ConfigError(f"objective '{o.name}': parts lists its own metric '{o.metric}': list only the metrics it averages")
        for part in o.parts:
            if part in owner:
                raise ConfigError(f"objective '{o.name}': part '{part}' is already a part of objective "
                                  f"'{owner[part]}': a metric can be a part of one objective only")
            owner[part] = o.name


# -- strict construction of dataclasses from YAML data -----------------------------------------------
def _build(cls: type, data: Any, path: str) -> Any:
    where = path or "study config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            fix = f"did you mean '{hint[0]}'?" if hint else f"allowed keys: {', '.join(fields)}"
            raise ConfigError(f"{_join(path, key)}: unknown key: {fix}")
    missing = [
        name for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key '{missing[0]}'")
    return cls(**{key: _coerce(hints[key], value, _join(path, key)) for key, value in data.items()})


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp is ComponentConfig and isinstance(value, str):
            return ComponentConfig(value)
        return _build(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_describe(value)}")
        return [_coerce(args[0], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {_describe(value)}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e9 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {_describe(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_describe(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_describe(value)}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp} at {path}")


def _describe(value: Any) -> str:
    """A value's type and the start of its repr, for messages; bounded however large or deeply shared the
    value is (a YAML alias bomb expands to 9**9 items)."""
    return f"{type(value).__name__} {shown(value)[:40]}"
