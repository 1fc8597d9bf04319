"""``urbanpulse kpis`` refuses what it cannot do before touching any service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from urbanpulse.cli import app


def test_a_bad_period_or_a_backfill_beyond_the_raw_data_is_refused() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["kpis", "--every", "soon"])
    assert bad.exit_code == 2 and "not a duration" in bad.output
    too_old = (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    old = runner.invoke(app, ["kpis", "--since", too_old])
    assert old.exit_code == 2 and "raw readings are kept 30 days" in old.output
    not_a_date = runner.invoke(app, ["kpis", "--since", "yesterday"])
    assert not_a_date.exit_code == 2
