"""A Jepsen-style chaos soak of ``mixopt study run`` on shared PostgreSQL storage, checked on the history.

Three controllers, each on a simulated machine of its own (``test_hosts.start_in_container``: liveness by
heartbeat) and each reaching the server through a TCP proxy in this process, share one study of the
synthetic runner (``faulty_runner.ResultFileRunner``: short runs, one ``local`` pool worker each). Seeded faults (``random.Random(seed)``) hit
them: SIGSTOP past the stale limit then SIGCONT, SIGKILL of a controller (restarted on a new machine) or of
a pool worker, a restart of the PostgreSQL server, a controller cut off from the database (its proxy drops
every connection and refuses new ones) past the stale limit. Then the controllers finish the study, and
:func:`check` reads the history for violations.

    python tests/reliability/soak.py --events 200 --seed 7      # longer than the CI test; prints the figures
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: import the test helpers as the tests do
    sys.path[:0] = [str(HERE), str(HERE.parent)]

from pg_server import PostgresServer  # noqa: E402
from test_hosts import controller_pid, start_in_container  # noqa: E402
from test_kills import env, workers  # noqa: E402

from study_helpers import write_study  # noqa: E402

KINDS = ("pause", "kill controller", "kill worker", "restart database", "cut off")
CONTROLLERS = 3
HEARTBEAT_SECONDS, STALE_SECONDS = 0.25, 2.0  # a controller paused or cut off this long is taken for dead
OUTAGE_SECONDS = STALE_SECONDS + 1.0  # how long a pause or a cut lasts
RUN_SECONDS = 0.4
WORKER_DIED = "the worker process running this trial died"


# -- the history and its invariants --------------------------------------------------------------------------
@dataclass
class History:
    """What the soak left: the study's trials and late results (read through mixopt's facade), the results
    the runs wrote into their folders, the machines whose controller was SIGKILLed (a result in flight is lost
    with its controller) and each controller's exit that the soak did not cause (machine, code, last line)."""

    n_trials: int
    trials: list[dict]  # number, state, mixture, seed, proposal_seed, rerun_of, replicate_of, fail_reason, controller
    late: list[dict]  # Study.late_results(): trial, controller, run_folder...
    results: list[dict]  # trial, host, folder: one per result file
    killed: set[str] = field(default_factory=set)
    exits: list[tuple[str, int, str]] = field(default_factory=list)


def refused_start(code: int, line: str) -> bool:
    """A controller started while the database was unreachable exits 2 with one line (opening a storage
    fails fast, by design); the soak starts it again."""
    return code == 2 and line.startswith("error: cannot open storage")


def host_of(controller: str | None) -> str:
    return (controller or "").split(":")[0]


def check(history: History) -> list[str]:
    """Every violation of the soak's invariants in ``history``, one line each (none: it passed)."""
    violations = [f"controller on {host} exited {code}: {line}" for host, code, line in history.exits
                  if not refused_start(code, line)]
    trials = history.trials
    by_state = Counter(t["state"] for t in trials)
    if by_state["COMPLETE"] != history.n_trials:
        violations.append(f"{by_state['COMPLETE']} trials complete, not n_trials={history.n_trials}")
    violations += [f"trial {t['number']} left RUNNING" for t in trials if t["state"] == "RUNNING"]
    reruns = Counter(t["rerun_of"] for t in trials if t["rerun_of"] is not None)
    for t in trials:
        if t["state"] == "FAIL" and not t["fail_reason"]:
            violations.append(f"trial {t['number']} failed without a reason")
        if reruns[t["number"]] > 1:
            violations.append(f"trial {t['number']} re-run {reruns[t['number']]} times")
        if str(t["fail_reason"]).startswith("interrupted") and not reruns[t["number"]]:
            violations.append(f"trial {t['number']} interrupted and never re-run")
    # First runs (no re-runs, no replicates) that started: each its own mixture, run seed and proposal seed
    # (the soak proposes one mixture per batch).
    firsts = [t for t in trials if t["seed"] is not None and t["rerun_of"] is None and t["replicate_of"] is None]
    for label, value_of in (("mixture", lambda t: tuple(sorted((k, round(v, 9)) for k, v in t["mixture"].items()))),
                            ("run seed", lambda t: t["seed"]), ("proposal seed", lambda t: t["proposal_seed"])):
        groups: dict = {}
        for t in firsts:
            groups.setdefault(value_of(t), []).append(t["number"])
        violations += [f"{label} {value} used by trials {numbers}, not re-runs or replicates"
                       for value, numbers in groups.items() if len(numbers) > 1]
    completed = {(t["number"], host_of(t["controller"])) for t in trials if t["state"] == "COMPLETE"}
    worker_died = {(t["number"], host_of(t["controller"])) for t in trials
                   if WORKER_DIED in str(t["fail_reason"])}  # killed after writing its result, before handing it back
    kept = {(a["trial"], host_of(a["controller"])) for a in history.late}
    accounted = completed | kept | worker_died
    for result in history.results:
        if result["host"] not in history.killed and (result["trial"], result["host"]) not in accounted:
            violations.append(f"result of trial {result['trial']} on {result['host']} ({result['folder']}) lost: "
                              "neither a completion nor a kept late attempt")
    return violations


def read_history(storage: str, runs: Path, n_trials: int, killed: set[str], exits: list) -> History:
    """The soak's :class:`History`, read through ``mixopt.study.Study`` and from the run folders."""
    from mixopt.study import Study, queued_mixture
    from mixopt.trials import Attr

    study = Study.load(storage, "synthetic")
    trials = [{"number": t.number, "state": t.state.name, "mixture": queued_mixture(t), "seed": t.user_attrs.get(Attr.SEED),
               "proposal_seed": t.user_attrs.get(Attr.PROPOSAL_SEED),
               "rerun_of": t.user_attrs.get(Attr.RERUN_OF), "replicate_of": t.user_attrs.get(Attr.REPLICATE_OF),
               "fail_reason": t.user_attrs.get(Attr.FAIL_REASON), "controller": t.user_attrs.get(Attr.CONTROLLER)}
              for t in study.trials()]
    results = [{**json.loads(path.read_text()), "folder": str(path.parent)} for path in sorted(runs.glob("*/result-*.json"))]
    return History(n_trials, trials, study.late_results(), results, set(killed), list(exits))


# -- the faults ------------------------------------------------------------------------------------------------
class Proxy:
    """A TCP forwarder from a free local port to the database's; :meth:`cut` drops every connection through it
    and refuses new ones (a controller cut off from the database) until :meth:`restore`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            try:
                if not self.open.is_set():
                    raise OSError("cut off")
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@dataclass
class Controller:
    """One slot's ``mixopt study run``, started on the machine ``soak-<slot>-<incarnation>`` through its proxy."""

    slot: int
    proxy: Proxy
    folder: Path
    incarnation: int = 0
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"soak-{self.slot}-{self.incarnation}"

    def start(self, config: Path, url: str) -> None:
        self.incarnation += 1
        environment = {**env(), "MIXOPT_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                       "MIXOPT_HEARTBEAT_STALE_SECONDS": str(STALE_SECONDS)}
        with open(self.log, "w") as output:
            self.process = start_in_container(config, environment, self.host,
                                              ("--storage", url, "--no-report"), output)

    @property
    def log(self) -> Path:
        return self.folder / f"controller-{self.host}.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def last_line(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""


@dataclass
class Soak:
    """The figures of one soak: faults by kind, trials by state, late results, violations, seconds."""

    faults: Counter
    history: History
    violations: list[str]
    faults_seconds: float  # from the start to the last fault
    seconds: float

    def summary(self) -> str:
        states = Counter(t["state"] for t in self.history.trials)
        faults = ", ".join(f"{kind} {self.faults[kind]}" for kind in KINDS)
        return (f"chaos soak: {sum(self.faults.values())} faults ({faults}); trials {len(self.history.trials)} "
                f"(complete {states['COMPLETE']}/{self.history.n_trials}, failed {states['FAIL']}, re-runs "
                f"{sum(t['rerun_of'] is not None for t in self.history.trials)}), late results kept "
                f"{len(self.history.late)}, run results checked {len(self.history.results)}, controllers restarted after "
                f"refusing to start during an outage {sum(refused_start(c, line) for _, c, line in self.history.exits)}; "
                "invariant violations "
                f"{len(self.violations)}; {self.seconds:.0f} s ({self.faults_seconds:.0f} s to the last fault)")


def soak(folder: Path, events: int, seed: int, n_trials: int, say=print) -> Soak:
    """Run the soak in ``folder`` with ``events`` faults drawn from ``random.Random(seed)``; ``say`` gets a
    line per fault."""
    started = time.monotonic()
    rng = random.Random(seed)
    config = write_study(folder, {"runner": {"name": "faulty_runner:ResultFileRunner", "options": {
        "delay": RUN_SECONDS, "metrics": ["math_loss", "code_loss", "qa_loss"], "problem_seed": 7,
        "integration": ["integration"]}}, "n_trials": n_trials, "batch_size": 1,
        "executor": {"name": "local", "options": {"workers": 1}}})
    server = PostgresServer()
    controllers = [Controller(slot, Proxy(server.port), folder) for slot in range(CONTROLLERS)]
    faults: Counter = Counter()
    killed: set[str] = set()
    exits: list[tuple[str, int, str]] = []

    def busy(c: Controller) -> bool:
        """Whether the controller has a pool worker (one just started has not spawned it yet)."""
        return c.running() and bool(c.process and workers(controller_pid(c.process)))

    def restart_ended() -> None:
        for c in controllers:
            if c.process is not None and c.process.poll() is not None:
                if c.process.returncode != 0:
                    exits.append((c.host, c.process.returncode, c.last_line()))
                c.start(config, server.url_via(c.proxy.port))

    try:
        for c in controllers:
            c.start(config, server.url_via(c.proxy.port))
        for _ in range(events):
            kind = rng.choice(KINDS)
            time.sleep(rng.uniform(0.2, 1.0))
            restart_ended()
            target = rng.choice([c for c in controllers if kind != "kill worker" or busy(c)] or controllers)
            assert target.process is not None
            if kind == "restart database":
                server.stop()
                time.sleep(rng.uniform(0.0, 1.0))
                server.start()
            elif kind == "cut off":
                target.proxy.cut()
                time.sleep(OUTAGE_SECONDS)
                target.proxy.restore()
            else:
                try:
                    pid = controller_pid(target.process)
                except AssertionError:
                    raise AssertionError(f"the controller on {target.host} ended before the fault: raise n_trials; "
                                         f"{target.log.read_text()[-1500:]}") from None
                if kind == "pause":
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(OUTAGE_SECONDS)
                    os.kill(pid, signal.SIGCONT)
                elif kind == "kill controller":
                    os.killpg(target.process.pid, signal.SIGKILL)  # the controller and its pool: the machine is gone
                    target.process.wait()
                    killed.add(target.host)
                    target.start(config, server.url_via(target.proxy.port))
                else:
                    deadline = time.monotonic() + 60  # a controller just started spawns its worker slowly
                    while not (pool := workers(pid)) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert pool, f"the controller on {target.host} never started a pool worker"
                    os.kill(rng.choice(pool), signal.SIGKILL)
            faults[kind] += 1
            say(f"fault {sum(faults.values())}/{events}: {kind}" + ("" if kind == "restart database" else f" ({target.host})"))
        faults_seconds = time.monotonic() - started
        for c in controllers:  # the faults stopped: the controllers finish the study
            assert c.process is not None
            if c.process.wait(timeout=600) != 0:
                exits.append((c.host, c.process.returncode, c.last_line()))
        history = read_history(server.url, folder / "runs" / "synthetic", n_trials, killed, exits)
    finally:
        for c in controllers:
            if c.running():
                assert c.process is not None
                os.killpg(c.process.pid, signal.SIGKILL)
            c.proxy.close()
        server.close()
    return Soak(faults, history, check(history), faults_seconds, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100, help="faults to inject")
    parser.add_argument("--seed", type=int, default=0, help="seed of the faults' kinds, targets and timing")
    parser.add_argument("--trials", type=int, help="n_trials of the study (default: 4 per event)")
    parser.add_argument("--folder", type=Path, help="where the study, its runs and the logs go (default: a new temporary folder)")
    args = parser.parse_args()
    import tempfile

    folder = args.folder or Path(tempfile.mkdtemp(prefix="mixopt-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    result = soak(folder, args.events, args.seed, args.trials or 4 * args.events)
    print(result.summary())
    for violation in result.violations:
        print(f"VIOLATION {violation}")
    print(f"(study, runs and controller logs in {folder})")
    sys.exit(1 if result.violations else 0)


if __name__ == "__main__":
    main()
