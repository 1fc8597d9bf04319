"""Summaries of py-spy's collapsed stacks."""

import pytest

from benchmarks.profiles import frame_name, parse_collapsed

MAIN = "main (app.py:10);handle (streams/app.py:20)"
PROCESS = "process (streams/pipeline.py:7)"
COLLAPSED = "\n".join(
    [
        f"{MAIN};model_validate_json (pydantic/main.py:5) 6",
        f"{MAIN};{PROCESS};model_copy (pydantic/main.py:9);deepcopy (copy.py:1) 3",
        f"{MAIN};{PROCESS};model_validate_json (pydantic/main.py:5) 1",
        "main (app.py:10);rec (x.py:1);rec (x.py:1) 2",
        "not a stack line",
    ]
)


def test_frame_names_drop_the_line() -> None:
    assert frame_name("dumps (json/__init__.py:231)") == "dumps (json/__init__.py)"
    assert frame_name("<module> (<string>:4)") == "<module> (<string>)"


def test_inclusive_and_own_shares() -> None:
    profile = parse_collapsed(COLLAPSED)
    assert profile.samples == 12
    assert profile.share("main (app.py)") == 1.0
    assert profile.share("model_validate_json (pydantic/main.py)") == pytest.approx(7 / 12)
    assert profile.share("deepcopy (copy.py)", inclusive=False) == pytest.approx(3 / 12)
    assert profile.share("rec (x.py)") == pytest.approx(2 / 12)  # recursion counted once


def test_matching_consecutive_frames_tells_callers_apart() -> None:
    profile = parse_collapsed(COLLAPSED)
    assert profile.matching("^model_validate_json ") == pytest.approx(7 / 12)
    assert profile.matching("^handle ", "^model_validate_json ") == pytest.approx(6 / 12)
    assert profile.matching("^process ", "^model_copy ") == pytest.approx(3 / 12)
    assert profile.matching("^model_copy ", "^process ") == 0  # caller first


def test_packages_and_top_functions() -> None:
    profile = parse_collapsed(COLLAPSED)
    assert profile.by_package()[0] == ("pydantic", pytest.approx(7 / 12))
    assert dict(profile.by_package())["copy.py"] == pytest.approx(3 / 12)
    top = profile.top(2, within=("streams/",))
    assert [name for name, _ in top] == ["handle (streams/app.py)", "process (streams/pipeline.py)"]
    assert parse_collapsed("").top(3) == []
