"""Uniform log lines for every UrbanPulse process: readable text, or one JSON object a line.

``text`` (the default) is for people at a terminal: ``time level component: message``.
``json`` is for log collectors (Loki, Elasticsearch, CloudWatch): every record is one JSON
object on one line with ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``component``,
``message``, any ``extra={...}`` fields of the call, and ``exc_info`` for exceptions.

The same :func:`logging_config` is handed to Faust's worker (which otherwise installs its own
coloured handler) and used by :func:`configure`, so the worker logs like everyone else.
"""

from __future__ import annotations

import json
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

# Record attributes python-json-logger renames, so every component uses the same keys.
_RENAMED = {"levelname": "level", "name": "logger"}


def logging_config(level: str, component: str, fmt: LogFormat = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary: one stderr handler on the root logger."""
    if fmt == "json":
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "{levelname}{name}{message}",
            "style": "{",
            "rename_fields": _RENAMED,
            "static_fields": {"component": component},
            "timestamp": "time",  # RFC 3339 in UTC, from the record's creation time
        }
    else:
        formatter = {
            "format": f"%(asctime)s %(levelname)-7s {component}: %(message)s",
            "datefmt": "%H:%M:%S",
        }
    return {
        "version": 1,
        # Loggers created at import time (faust, aiokafka, uvicorn) must keep working.
        "disable_existing_loggers": False,
        "formatters": {"urbanpulse": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "urbanpulse",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure(level: str, component: str, fmt: LogFormat = "text") -> None:
    """Send every log record of this process to stderr, as text or as JSON lines."""
    logging.config.dictConfig(logging_config(level, component, fmt))


def relay_line(component: str, line: str, fmt: LogFormat, now: datetime | None = None) -> str:
    """One child's output line as ``urbanpulse up`` prints it (it merges several children).

    Text: prefixed with the component's name. JSON: a line that already is a JSON object goes
    through untouched; anything else the child printed (a banner, a traceback line) is wrapped
    into one, so the merged stream stays one JSON object a line.
    """
    if fmt == "text":
        return f"[{component:<8}] {line}"
    if line.startswith("{"):
        try:
            if isinstance(json.loads(line), dict):
                return line
        except ValueError:
            pass
    at = (now or datetime.now(UTC)).isoformat()
    record = {"time": at, "level": "INFO", "logger": "stdout", "component": component}
    return json.dumps(record | {"message": line})
