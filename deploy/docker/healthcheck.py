"""Container health check of the UrbanPulse image: exit 0 when healthy, 1 otherwise.

    python /opt/urbanpulse/healthcheck.py [--http URL] [mqtt] [kafka] [influxdb]

``--http URL`` asks the process itself (the API's ``/readyz``); each dependency name checks
that the service the component needs accepts TCP connections at the address the component is
configured with (the same ``URBANPULSE_*`` settings). Ingest and worker have no HTTP endpoint
of their own yet, so for them this is a readiness check of their dependencies, not a liveness
check of the process. Used by ``deploy/compose/compose.yaml`` and the Helm chart's probes.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from urllib.parse import urlsplit

from urbanpulse.settings import Settings

TIMEOUT_S = 3.0


def _addresses(settings: Settings, dependency: str) -> list[tuple[str, int]]:
    """The host:port pairs of one dependency, as the component is configured."""
    if dependency == "mqtt":
        return [(settings.mqtt.host, settings.mqtt.port)]
    if dependency == "kafka":
        pairs = []
        for server in settings.kafka.bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            pairs.append((host.strip("[]"), int(port)))
        return pairs
    if dependency == "influxdb":
        url = urlsplit(settings.influx.url)
        default = 443 if url.scheme == "https" else 80
        return [(url.hostname or "localhost", url.port or default)]
    raise SystemExit(f"unknown dependency {dependency!r} (one of: mqtt kafka influxdb)")


def reachable(addresses: list[tuple[str, int]]) -> bool:
    """Whether any of the addresses accepts a TCP connection."""
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT_S):
                return True
        except OSError:
            continue
    return False


def http_ok(url: str) -> bool:
    """Whether a GET of the URL answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def main(argv: list[str]) -> int:
    """Run the checks named on the command line; print the failed ones."""
    settings = Settings()
    failed = []
    args = list(argv)
    if args[:1] == ["--http"]:
        url = args[1]
        args = args[2:]
        if not http_ok(url):
            failed.append(url)
    for dependency in args:
        if not reachable(_addresses(settings, dependency)):
            failed.append(dependency)
    if failed:
        print(f"unhealthy: {', '.join(failed)} not reachable", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
