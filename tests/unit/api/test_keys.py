"""API keys and their scopes: the configuration format, and who a presented key names."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.keys import ApiKey, ApiKeys, Principal, load_keys, parse_key
from urbanpulse.settings import ApiSettings

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (KEY, ApiKey(secret=KEY, scope="read")),  # a bare key may only read: least privilege
        (f"{KEY}:read", ApiKey(secret=KEY, scope="read")),
        (f"{KEY}:admin", ApiKey(secret=KEY, scope="admin")),
        (f"  {KEY}:admin \n", ApiKey(secret=KEY, scope="admin")),
        (f"a:b:{KEY}:admin", ApiKey(secret=f"a:b:{KEY}", scope="admin")),  # the last ':' only
    ],
)
def test_entries_are_a_key_and_its_scope(entry: str, key: ApiKey) -> None:
    assert parse_key(entry) == key


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (f"{KEY}:amdin", "SCOPE one of read, admin"),  # a typo stops the API, loudly
        (f"{KEY}:Admin", "SCOPE one of read, admin"),
        (f"{KEY}:", "SCOPE one of read, admin"),
        ("changeme", "at least 16"),
        ("changeme:admin", "at least 16"),
    ],
)
def test_bad_entries_stop_the_api(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_key(entry)


def test_keys_come_from_settings_and_a_file(tmp_path: Path) -> None:
    file = tmp_path / "keys"
    file.write_text(f"# staff keys\n{OTHER_KEY}:admin\n\n")
    keys = load_keys(ApiSettings(api_keys=[KEY], api_keys_file=str(file)))
    assert keys == [ApiKey(secret=KEY, scope="read"), ApiKey(secret=OTHER_KEY, scope="admin")]
    with pytest.raises(ValueError, match="at least 16"):
        load_keys(ApiSettings(api_keys=["changeme"]))
    with pytest.raises(ValueError, match="listed twice"):
        load_keys(ApiSettings(api_keys=[KEY, f"{KEY}:admin"]))


def test_a_valid_key_names_its_caller_and_scope() -> None:
    keys = ApiKeys([ApiKey(secret=KEY), ApiKey(secret=OTHER_KEY, scope="admin")])
    reader, admin = keys.identify(KEY), keys.identify(OTHER_KEY)
    assert isinstance(reader, Principal) and reader.scope == "read" and not reader.admin
    assert isinstance(admin, Principal) and admin.admin
    assert reader == keys.identify(KEY) and reader.client != admin.client
    assert KEY not in reader.client  # the name is a fingerprint, never the key
    assert keys.identify("nope") is None and keys.identify(KEY[:-1]) is None
    assert keys.identify(f"{OTHER_KEY}:admin") is None  # the scope is configuration only
    assert ApiKeys([]).identify("") is None and not ApiKeys([])
