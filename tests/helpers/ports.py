"""Free TCP ports for the servers the tests start."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 that nothing listens on now (the kernel's picks, so parallel runs do not collide)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def free_port() -> int:
    """One port on 127.0.0.1 that nothing listens on now."""
    return free_ports(1)[0]
