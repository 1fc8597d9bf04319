"""Tell systemd how the service is doing (``Type=notify``): ready, status line, watchdog.

The protocol is one datagram to the socket named by ``$NOTIFY_SOCKET`` (sd_notify(3)); outside
systemd the variable is unset and every call does nothing.
"""

from __future__ import annotations

import os
import socket


def notify(*fields: str) -> bool:
    """Send ``KEY=value`` fields, e.g. ``notify("READY=1", "STATUS=all running")``.

    Returns whether a notification socket was there to send to.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall("\n".join(fields).encode())
    return True


def watchdog_interval_s() -> float | None:
    """Half of ``WatchdogSec=`` (how often to send ``WATCHDOG=1``), or None when it is off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
