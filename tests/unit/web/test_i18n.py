"""The language files: the same keys in every language, every key the pages need, negotiation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.web import i18n
from api.web.pages import ALL_FLAGS
from urbanpulse.display import DISPLAY, DOMAINS, band_labels

WEB = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def keys(code: str) -> set[str]:
    return set(json.loads((i18n.FOLDER / f"{code}.json").read_text(encoding="utf-8")))


def test_there_is_one_file_per_language_and_no_other() -> None:
    assert {p.stem for p in i18n.FOLDER.glob("*.json")} == set(i18n.LANGUAGES)


@pytest.mark.parametrize("code", sorted(set(i18n.LANGUAGES) - {"en"}))
def test_every_language_has_exactly_the_keys_of_english(code: str) -> None:
    english, other = keys("en"), keys(code)
    assert sorted(english - other) == [], f"{code}.json lacks these keys"
    assert sorted(other - english) == [], f"{code}.json has keys English does not"


@pytest.mark.parametrize("code", sorted(i18n.LANGUAGES))
def test_placeholders_are_the_same_as_in_english(code: str) -> None:
    english, other = i18n.strings("en"), i18n.strings(code)
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(other[key])) == set(PLACEHOLDER.findall(text)), key


def test_english_names_every_quantity_band_domain_and_flag_the_pages_show() -> None:
    english = keys("en")
    needed = (
        {f"quantity.{q}" for q in DISPLAY}
        | band_labels()
        | {f"domain.{d}" for d in DOMAINS}
        | {f"flag.{f}" for f in ALL_FLAGS}
        | {f"flag.{f}.name" for f in ALL_FLAGS}
    )
    assert sorted(needed - english) == []


def test_every_key_the_templates_and_scripts_use_exists() -> None:
    english = keys("en")
    used: set[str] = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("static/*.js")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""t\[["']([a-z_]+\.[a-z_.]+)["']\]""", text))  # t["x.y"]
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""", text))  # UP.t("x.y")
    assert used, "the patterns found no key at all"
    assert sorted(used - english) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-FR,fr;q=0.9,nl;q=0.5,en;q=0.4", "nl"),
        ("en;q=0.2, es;q=0.8", "es"),
        ("fr, it", None),
        ("de;q=0, es", "es"),
        ("nl;q=bogus, de", "de"),
        ("", None),
        (None, None),
    ],
)
def test_accept_language_picks_the_best_supported_language(
    header: str | None, expected: str | None
) -> None:
    assert i18n.from_accept_language(header) == expected


def test_the_manual_switch_beats_the_cookie_which_beats_the_browser() -> None:
    assert i18n.choose("es", "nl", "de") == "es"
    assert i18n.choose(None, "nl", "de") == "nl"
    assert i18n.choose("xx", "zz", "de-AT") == "de"
    assert i18n.choose(None, None, "fr") == "en"
