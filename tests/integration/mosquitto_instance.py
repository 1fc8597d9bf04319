"""A Mosquitto of a test's own, started from one of our shipped configs on a free port.

The shared broker on 1883 is never touched: the test copies ``deploy/local/mosquitto.conf`` or
``deploy/compose/mosquitto/mosquitto.conf`` into its tmp dir, changes only what cannot work
outside its home (port, data folder, the plugin's and its config file's paths, the user to run
as) and starts ``mosquitto -c`` on that copy. Every other line is the shipped one, so the test
checks the configuration we ship.
"""

from __future__ import annotations

import getpass
import glob
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO, free_port, port_open, wait_for

LOCAL_CONF = REPO / "deploy" / "local" / "mosquitto.conf"
COMPOSE_CONF = REPO / "deploy" / "compose" / "mosquitto" / "mosquitto.conf"


@dataclass(frozen=True, kw_only=True)
class Broker:
    """A running test broker: its port and the file its log goes to."""

    port: int
    log: Path

    def log_text(self) -> str:
        """What the broker logged so far."""
        return self.log.read_text(errors="replace")


def adjust(conf: str, values: Mapping[str, str]) -> str:
    """The config with the value of each named option replaced (a missing option: appended).

    As root, Mosquitto would drop to its own user, who cannot read pytest's tmp_path: ``user``
    is always set to whoever runs the test.
    """
    values = {"user": getpass.getuser(), **values}
    lines, seen = [], set()
    for line in conf.replace("@PORT@", "0").splitlines():
        key = line.split(None, 1)[0] if line.strip() and not line.startswith("#") else ""
        if key in values:
            line = f"{key} {values[key]}"
            seen.add(key)
        lines.append(line)
    lines += [f"{k} {v}" for k, v in values.items() if k not in seen]
    return "\n".join(lines) + "\n"


def dynamic_security_plugin() -> str:
    """Where Debian's mosquitto package keeps the dynamic security plugin."""
    found = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob(
        "/usr/lib/mosquitto_dynamic_security.so"
    )
    assert found, "mosquitto_dynamic_security.so not found (Debian package mosquitto)"
    return found[0]


@contextmanager
def running(conf: Path, tmp: Path, values: Mapping[str, str] | None = None) -> Iterator[Broker]:
    """Start Mosquitto on a free port with a copy of ``conf``; stop it afterwards."""
    port = free_port()
    data = tmp / "mosquitto-data"
    data.mkdir(exist_ok=True)
    overrides = {"listener": f"{port} 127.0.0.1", "persistence_location": f"{data}/"}
    copy = tmp / "mosquitto.conf"
    copy.write_text(adjust(conf.read_text(), {**overrides, **(values or {})}))
    log = tmp / "mosquitto.log"
    with log.open("ab") as out:
        process = subprocess.Popen(["mosquitto", "-c", str(copy)], stdout=out, stderr=out)
    try:
        wait_for(lambda: port_open(port) or process.poll() is not None, 10, "the test broker")
        assert process.poll() is None, f"mosquitto exited:\n{log.read_text()}"
        yield Broker(port=port, log=log)
    finally:
        process.terminate()
        process.wait(timeout=10)
