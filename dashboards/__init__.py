"""Grafana dashboards as code: the boards, their provisioning files and the push command.

``dashboards.boards`` builds every board with grafana-foundation-sdk, ``dashboards.render``
turns them into the JSON and provisioning files committed under ``dashboards/json`` and
``dashboards/provisioning``, and ``dashboards.push`` sends them to a running Grafana.
"""
