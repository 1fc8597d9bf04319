"""deploy/tools/backup.sh and restore.sh without InfluxDB: options, checks, and kept files.

The whole procedure with InfluxDB runs in tests/integration/test_backup_restore.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.deploy.support import DEPLOY, run

BACKUP = DEPLOY / "tools" / "backup.sh"
RESTORE = DEPLOY / "tools" / "restore.sh"


@pytest.mark.parametrize("script", [BACKUP, RESTORE], ids=lambda p: p.name)
def test_help_explains_every_option(script: Path) -> None:
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", script.read_text(), re.M))
    assert len(parsed) >= 5
    for option in parsed:
        assert re.search(rf"^  {option}\b", result.stdout, re.M), f"{option} is not in --help"


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "DEST is missing"), (["--frobnicate", "x"], "unknown option --frobnicate")],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(BACKUP, *args)
    assert result.returncode == 2
    assert message in result.stderr and "--help" in result.stderr


def files_only_backup(tmp_path: Path) -> tuple[Path, Path, Path]:
    registry = tmp_path / "etc" / "sensors.csv"
    registry.parent.mkdir()
    registry.write_text("tenant,sensor_id\ntown,air-1\n")
    secret = tmp_path / "etc" / ".env"
    secret.write_text("URBANPULSE_MQTT__PASSWORD=s3cret\n")
    secret.chmod(0o600)
    backup = tmp_path / "backup"
    result = run(BACKUP, "--no-influx", "--registry", registry, "--file", secret, backup)
    assert result.returncode == 0, result.stderr
    return backup, registry, secret


def test_kept_files_come_back_with_their_permissions(tmp_path: Path) -> None:
    backup, registry, secret = files_only_backup(tmp_path)
    assert "influxdb: not in this backup" in (backup / "BACKUP").read_text()
    target = tmp_path / "new-machine"
    result = run(RESTORE, "--files-to", target, backup)
    assert result.returncode == 0, result.stderr
    assert (target / "sensors.csv").read_text() == registry.read_text()
    assert (target / ".env").read_text() == secret.read_text()
    assert (target / ".env").stat().st_mode & 0o777 == 0o600


def test_restore_puts_files_back_where_they_were(tmp_path: Path) -> None:
    backup, registry, secret = files_only_backup(tmp_path)
    texts = {path: path.read_text() for path in (registry, secret)}
    registry.unlink()
    secret.write_text(texts[secret])  # identical: left as it is, no --replace needed
    result = run(RESTORE, backup)
    assert result.returncode == 0, result.stderr
    assert {path: path.read_text() for path in (registry, secret)} == texts


def test_a_changed_file_is_overwritten_only_with_replace(tmp_path: Path) -> None:
    backup, registry, _ = files_only_backup(tmp_path)
    registry.write_text("tenant,sensor_id\ntown,air-2\n")
    refused = run(RESTORE, backup)
    assert refused.returncode == 1
    assert f"{registry} exists and differs" in refused.stderr
    assert "air-2" in registry.read_text()
    replaced = run(RESTORE, "--replace", backup)
    assert replaced.returncode == 0, replaced.stderr
    assert "air-1" in registry.read_text()


def test_a_damaged_or_unfinished_backup_is_refused(tmp_path: Path) -> None:
    backup, registry, _ = files_only_backup(tmp_path)
    registry.unlink()
    (backup / "files" / "01-sensors.csv").write_text("tenant,sensor_id\nevil,x\n")
    damaged = run(RESTORE, backup)
    assert damaged.returncode == 1
    assert "checksums" in damaged.stderr and not registry.exists()
    (backup / "BACKUP").unlink()
    unfinished = run(RESTORE, backup)
    assert unfinished.returncode == 1 and "no BACKUP file" in unfinished.stderr


def test_backup_never_writes_over_another(tmp_path: Path) -> None:
    backup, registry, _ = files_only_backup(tmp_path)
    before = sorted(p.name for p in backup.rglob("*"))
    again = run(BACKUP, "--no-influx", "--registry", registry, backup)
    assert again.returncode == 1 and "is not empty" in again.stderr
    assert sorted(p.name for p in backup.rglob("*")) == before


def test_backup_refuses_influxdb_2_and_names_the_way(tmp_path: Path) -> None:
    result = run(BACKUP, tmp_path / "b", env={"URBANPULSE_INFLUX__ORG": "city"})
    assert result.returncode == 1
    assert "influx backup" in result.stderr and not (tmp_path / "b").exists()


def test_a_missing_registry_stops_before_anything_is_written(tmp_path: Path) -> None:
    result = run(BACKUP, "--no-influx", "--registry", tmp_path / "nope.yaml", tmp_path / "b")
    assert result.returncode == 1 and "nope.yaml does not exist" in result.stderr
    assert not (tmp_path / "b").exists()
