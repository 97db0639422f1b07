"""Named failpoints for crash testing: ``MIXOPT_FAILPOINTS="tell:3"`` SIGKILLs this process the 3rd time
the controller reaches ``failpoint("tell")``; ``"report:1:raise"`` raises a ``RuntimeError`` there instead
(a bug, as an unexpected exception). Unset (always, outside the reliability tests), a failpoint costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_SETTING = os.environ.get("MIXOPT_FAILPOINTS", "")
_ARMED = {name: (int(count), action) for name, count, action in
          ((item.split(":") + ["kill"])[:3] for item in _SETTING.split(",") if item)}
_REACHED: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL (or raise, where armed so) if the failpoint ``name`` is armed for this occurrence."""
    if name in _ARMED:
        _REACHED[name] += 1
        count, action = _ARMED[name]
        if _REACHED[name] == count:
            if action == "raise":
                raise RuntimeError(f"failpoint {name} raised")
            os.kill(os.getpid(), signal.SIGKILL)
