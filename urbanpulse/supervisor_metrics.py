"""The supervisor's Prometheus metrics: restarts, up and crash-looping per component."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class SupervisorMetrics:
    """Metrics of ``urbanpulse up``, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.restarts = Counter(
            "urbanpulse_supervisor_restarts",
            "Restarts of a component or local service after it stopped on its own",
            ["component"],
            registry=self.registry,
        )
        self.up = Gauge(
            "urbanpulse_supervisor_component_up",
            "1 while the component's process runs, 0 while it is stopped or backing off",
            ["component"],
            registry=self.registry,
        )
        self.crash_looping = Gauge(
            "urbanpulse_supervisor_component_crash_looping",
            "1 while the component exits too often (supervisor.crash_loop_restarts within "
            "supervisor.crash_loop_window_s)",
            ["component"],
            registry=self.registry,
        )

    def known(self, component: str) -> None:
        """Export every series of a component from the start (0 restarts, not up)."""
        self.restarts.labels(component)
        self.up.labels(component).set(0)
        self.crash_looping.labels(component).set(0)

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics on host:port in a background thread (port 0: not at all)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
