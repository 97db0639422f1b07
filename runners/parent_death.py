"""Processes that end when the run that started them dies (Linux's parent-death signal), so a SIGKILLed
controller or run leaves no orphans training on: the microanneal runner's training processes and the
command runner's programs.

Run as a script, it is the command runner's launcher: ``python -I -S parent_death.py PARENT SIGNAL PROGRAM
[ARGS...]`` arms SIGNAL for when its parent dies, checks that PARENT is still its parent (it may have died
already), and replaces itself with PROGRAM (same pid, so the runner's process-group handling is unchanged).
The signal survives the exec. It imports only the standard library (``-I -S``: no site, no user paths).
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with(parent: int, signum: int = signal.SIGKILL) -> None:
    """Linux: this process gets ``signum`` when its parent dies; it ends now if ``parent`` is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        os._exit(1)


def launcher(parent: int, signum: int, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` through this script, armed with ``signum`` for when ``parent`` dies."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(parent), str(signum), *argv]


def _exec(args: list[str]) -> None:
    parent, signum, program = int(args[0]), int(args[1]), args[2:]
    die_with(parent, signum)
    try:
        os.execvp(program[0], program)
    except OSError as exc:
        print(f"cannot start {program[0]!r}: {exc.strerror}", file=sys.stderr)
        os._exit(127)


if __name__ == "__main__":
    _exec(sys.argv[1:])
