"""API keys and what each may do (its scope): parsing the configured keys, checking a
presented one (pure but for reading the keys file at start-up).

A configured key is ``KEY`` or ``KEY:SCOPE``:

* ``read`` — the keyed rate limit (``api.rate_keyed_*``) instead of the anonymous one, and
  nothing else: reading needs no key at all.
* ``admin`` — everything ``read`` may, plus the registry administration (``/v1/admin``) and
  the details of ``/readyz`` and ``/health``.

A bare ``KEY`` is a ``read`` key. Least privilege is the safe default: before scopes existed,
every key opened ``/v1/admin``, so a key handed to a partner for a higher rate limit could
change the registry. After an upgrade an administrator's key answers ``403`` with a message
that says to append ``:admin`` to it in the configuration; nothing gains rights silently.
A ``:`` in a configured entry always introduces its scope, and an unknown scope stops the API
at start-up (``KEY:amdin`` never becomes a key of its own by accident).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from urbanpulse.settings import ApiSettings

Scope = Literal["read", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
API_KEY_HEADER = "X-API-Key"
MIN_KEY_LENGTH = 16


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """One configured key and its scope."""

    secret: str
    scope: Scope = "read"


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who a valid key says the caller is: a fingerprint (never the key) and the scope."""

    client: str
    scope: Scope

    @property
    def admin(self) -> bool:
        """True when the key may administer the registry and read health details."""
        return self.scope == "admin"


def parse_key(entry: str) -> ApiKey:
    """``KEY`` (a read key) or ``KEY:SCOPE``; ValueError for an unknown scope or a short key."""
    secret, colon, scope = entry.strip().rpartition(":")
    if not colon:
        secret, scope = scope, "read"
    if scope not in SCOPES:
        raise ValueError(
            f"an API key entry is KEY or KEY:SCOPE with SCOPE one of {', '.join(SCOPES)}; "
            f"found the scope {scope[:12]!r}"
        )
    if len(secret) < MIN_KEY_LENGTH:
        raise ValueError(f"API keys need at least {MIN_KEY_LENGTH} characters; found shorter")
    return ApiKey(secret=secret, scope=scope)


def load_keys(api: ApiSettings) -> list[ApiKey]:
    """The keys of ``api.api_keys`` and ``api.api_keys_file``; ValueError (the API does not
    start) for a short key or an unknown scope."""
    entries = [k.get_secret_value() for k in api.api_keys]
    if api.api_keys_file:
        lines = Path(api.api_keys_file).read_text(encoding="utf-8").splitlines()
        entries += [line for line in lines if line.strip() and not line.startswith("#")]
    keys = [parse_key(entry) for entry in entries]
    if len({k.secret for k in keys}) < len(keys):
        raise ValueError("an API key is listed twice; list each once, with its scope")
    return keys


class ApiKeys:
    """The configured API keys, checked in constant time; a valid key names its caller."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._digests = [(hashlib.sha256(k.secret.encode()).digest(), k.scope) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def identify(self, presented: str) -> Principal | None:
        """The caller a valid key names (``key:<fingerprint>`` and its scope), else None.

        Every configured key is compared, found or not, so the time taken says nothing about
        which key or how much of one matched.
        """
        digest = hashlib.sha256(presented.encode()).digest()
        found: Scope | None = None
        for known, scope in self._digests:
            if secrets.compare_digest(digest, known):
                found = scope
        return None if found is None else Principal(client=f"key:{digest[:6].hex()}", scope=found)
