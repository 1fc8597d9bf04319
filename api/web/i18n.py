"""The pages' languages: which one a visitor gets, and its strings (pure but for reading files).

Strings live in one JSON file per language, ``api/web/i18n/<code>.json``, flat ``key → text``;
English is the reference and every other file has exactly its keys (a unit test checks).
Texts may contain ``{name}`` placeholders, filled by the page.

The language is, in order: the ``lang`` query parameter (the manual switch on every page),
the ``lang`` cookie it leaves, then the browser's ``Accept-Language`` (which browsers send
from the same list as ``navigator.languages``), then English.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

FOLDER = Path(__file__).parent / "i18n"
LANGUAGES = {"en": "English", "de": "Deutsch", "nl": "Nederlands", "es": "Español"}
DEFAULT = "en"
COOKIE = "lang"


def supported(code: str | None) -> str | None:
    """The supported language a tag names (``de-AT`` → ``de``), or None."""
    if not code:
        return None
    primary = code.strip().split("-")[0].split("_")[0].lower()
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an ``Accept-Language`` header (RFC 9110, 12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        code = supported(tag)
        if code is not None and weight > 0:
            ranked.append((-weight, position, code))
    return min(ranked)[2] if ranked else None


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language of a page: query parameter, then cookie, then the browser's, then English."""
    return supported(query) or supported(cookie) or from_accept_language(accept_language) or DEFAULT


@cache
def strings(code: str) -> dict[str, str]:
    """The strings of one language (read once per process)."""
    loaded = json.loads((FOLDER / f"{code}.json").read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{code}.json is not a JSON object")
    return {str(k): str(v) for k, v in loaded.items()}
