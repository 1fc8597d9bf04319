"""The README says what the code does."""

import re

from tests.conftest import REPO
from urbanpulse.settings_doc import table


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- settings:start[^>]*-->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert found, "README.md lost its settings markers"
    assert found.group(1) == table(), "regenerate: python -m urbanpulse.settings_doc --write"


def test_readme_names_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make up" in readme and "make test" in readme
