"""Named failpoints for crash testing: ``MIXOPT_FAILPOINTS="tell:3"`` SIGKILLs this process the 3rd time
the controller reaches ``failpoint("tell")``. Unset (always, outside the reliability tests), a failpoint
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_SETTING = os.environ.get("MIXOPT_FAILPOINTS", "")
_ARMED = {name: int(count) for name, _, count in (item.partition(":") for item in _SETTING.split(",") if item)}
_REACHED: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL if the failpoint ``name`` is armed for this occurrence."""
    if name in _ARMED:
        _REACHED[name] += 1
        if _REACHED[name] == _ARMED[name]:
            os.kill(os.getpid(), signal.SIGKILL)
