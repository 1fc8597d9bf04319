"""The fast rows of the fault matrix (benchmarks/faults.py), through the same code, at a low rate.

Each row is a fresh run of its own ingestor and worker on the test services: a steady stream,
one fault (SIGKILL of the ingestor or the worker, every poison message, the registry replaced
by garbage), and the comparison of every point in InfluxDB with what was published. A row
passes with 0 lost, 0 duplicates, exactly the dead letters benchmarks/poison.py expects (kind,
stage and reason; none for the load), no poison stored, and a control reading published right
after the fault stored within the row's control deadline. The figures of the full matrix at
500 readings/s are in docs/reliability.md.
"""

from __future__ import annotations

import pytest

from benchmarks.faults import FAST, Options, Row, run_scenario

# 100 readings/s: a few thousand readings a row, enough to cross a kill with readings in
# flight, and the file stays well under 3 minutes on the two shared cores.
OPTIONS = Options(rate=100, sensors=100, before_s=4, after_s=6, stall_s=60, control_timeout_s=30)


def _explain(row: Row) -> str:
    return (
        f"{row.scenario}: published {row.published}, stored {row.stored}, lost {row.lost} "
        f"{row.lost_by_sensor}, duplicates {row.duplicates} {row.duplicates_by_sensor}, "
        f"letters {row.letters}, unexpected {row.letters_unexpected}, poison stored "
        f"{row.poison_stored}, acks {row.poison_acked} {row.acks_unexpected}, "
        f"control {row.control_arrived} after {row.control_s} s, "
        f"catch-up {row.catch_up_s} s, error {row.error!r}"
    )


@pytest.mark.timeout(150)
@pytest.mark.parametrize("scenario", FAST)
def test_fast_row_loses_nothing_and_duplicates_nothing(scenario: str) -> None:
    row = run_scenario(scenario, OPTIONS)
    why = _explain(row)
    assert not row.error, why
    assert row.published > 500, why
    assert row.drained, why
    assert (row.lost, row.duplicates) == (0, 0), why
    assert row.letters_unexpected == [], why
    assert not any(row.poison_stored.values()), why
    assert row.acks_unexpected == [], why
    assert row.control_arrived, why
    assert row.ok, why
