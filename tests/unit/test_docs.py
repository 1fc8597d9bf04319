"""The README says what the code does."""

import re

from tests.conftest import REPO
from urbanpulse.flags import MEANINGS
from urbanpulse.quantities import QUANTITIES
from urbanpulse.settings_doc import table


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- settings:start[^>]*-->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert found, "README.md lost its settings markers"
    assert found.group(1) == table(), "regenerate: python -m urbanpulse.settings_doc --write"


def test_readme_names_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make up" in readme and "make test" in readme


def _rows(doc: str, first_header: str) -> list[list[str]]:
    """The rows of the markdown table whose header row starts with ``| first_header |``."""
    text = (REPO / "docs" / doc).read_text()
    block = text[text.index(f"| {first_header} |") :].split("\n\n", 1)[0]
    return [
        [c.strip().strip("`") for c in line.strip("|").split("|")]
        for line in block.splitlines()[2:]
    ]


def test_the_range_table_of_the_streams_doc_is_the_quantity_table() -> None:
    documented = {
        row[0]: (row[1], *map(float, row[2:5])) for row in _rows("streams.md", "quantity")
    }
    ranged = {n: q for n, q in QUANTITIES.items() if q.range is not None}
    assert documented == {
        n: (q.unit, q.range.low, q.range.high, q.range.max_step)
        for n, q in ranged.items()
        if q.range is not None
    }


def test_the_flag_table_of_the_streams_doc_says_what_the_code_says() -> None:
    documented = {
        row[0]: row[1].removesuffix(" (set by ingest)") for row in _rows("streams.md", "flag")
    }
    assert documented == dict(MEANINGS)
