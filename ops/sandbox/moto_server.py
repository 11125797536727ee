"""moto_server as the sandbox runs it: moto's own server, with one correction of AWS behaviour
moto gets wrong and the drills depend on.

- A DISABLED EventBridge rule delivers nothing. moto 5.2 matches and delivers every rule on
  put_events whatever its state, so `drctl`'s fence (the old region's rule disabled) would not
  stop deliveries. Upstream moto: events/models.py Rule.send_to_targets has no state check.

    python -m ops.sandbox.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys
from typing import Any


def _patch_disabled_rules() -> None:
    from moto.events.models import Rule

    deliver = Rule.send_to_targets

    def send_to_targets(self: Any, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "state", "ENABLED") != "ENABLED":
            return  # AWS: a disabled rule matches nothing
        deliver(self, *args, **kwargs)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from moto import server

    _patch_disabled_rules()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
