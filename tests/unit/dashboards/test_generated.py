"""The committed JSON and provisioning files are exactly what the code generates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dashboards import render
from dashboards.boards import BOARDS, FOLDERS
from dashboards.datasources import INFLUX_AGG_UID, INFLUX_UID, PROMETHEUS_UID


def test_committed_files_are_up_to_date() -> None:
    assert render.stale() == [], (
        "dashboards/ is out of date with the code: run `urbanpulse dashboards generate` "
        "(or .venv/bin/python -m dashboards.render) and commit the result"
    )


def test_a_changed_or_missing_file_is_reported(tmp_path: Path) -> None:
    expected = render.files()
    for path, text in expected.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert render.stale(tmp_path, expected) == []
    first = render.board_path(BOARDS[0])
    (tmp_path / first).write_text("{}\n", encoding="utf-8")
    (tmp_path / "provisioning/datasources/urbanpulse.yaml").unlink()
    (tmp_path / "json/city/old-board.json").write_text("{}\n", encoding="utf-8")
    assert render.stale(tmp_path, expected) == [
        first,
        "provisioning/datasources/urbanpulse.yaml",
        "json/city/old-board.json",
    ]


def test_write_brings_a_folder_up_to_date(tmp_path: Path) -> None:
    assert len(render.write(tmp_path)) == len(render.files())
    assert render.stale(tmp_path) == []
    assert render.write(tmp_path) == []


def test_board_uids_are_unique_and_every_panel_names_a_datasource_by_uid() -> None:
    uids = [board.uid for board in BOARDS]
    assert len(set(uids)) == len(uids) == 8
    for board in BOARDS:
        data: dict[str, Any] = render.board_json(board)
        assert data["uid"] == board.uid and 8 <= len(board.uid) <= 40
        for panel in data["panels"]:
            if panel["type"] == "text":
                continue
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                uid = target["datasource"]["uid"]
                assert uid in {INFLUX_UID, INFLUX_AGG_UID, PROMETHEUS_UID}
                if uid != PROMETHEUS_UID:
                    # buckets come from the data source, never from the dashboard
                    assert target["query"].startswith("from(bucket: v.defaultBucket)")
                    on_aggregates = any(
                        f'"{name}"' in target["query"] for name in ("aggregate", "alert", "kpi")
                    )
                    assert on_aggregates == (uid == INFLUX_AGG_UID), panel["title"]
        names = [v["name"] for v in data["templating"]["list"]]
        for variable in data["templating"]["list"]:
            if variable["type"] == "query":  # values reach Flux text: only offered ones
                assert variable["allowCustomValue"] is False, variable["name"]
        if board.uid != "urbanpulse-platform":
            assert "tenant" in names


def test_experiment_board_has_every_dimension_as_a_variable() -> None:
    data = render.board_json(next(b for b in BOARDS if b.uid == "urbanpulse-experiment"))
    names = {v["name"] for v in data["templating"]["list"]}
    assert {"tenant", "district", "sensor", "quantity", "window", "treated", "control"} <= names
    window = next(v for v in data["templating"]["list"] if v["name"] == "window")
    assert window["query"] == "1m,15m,1h"


def test_provisioning_files_are_valid_yaml_pointing_at_the_boards() -> None:
    files = render.files()
    datasources = yaml.safe_load(files["provisioning/datasources/urbanpulse.yaml"])
    by_uid = {d["uid"]: d for d in datasources["datasources"]}
    assert set(by_uid) == {INFLUX_UID, INFLUX_AGG_UID, PROMETHEUS_UID}
    for uid, bucket in ((INFLUX_UID, "RAW_BUCKET"), (INFLUX_AGG_UID, "AGGREGATE_BUCKET")):
        assert by_uid[uid]["jsonData"]["version"] == "Flux"
        assert by_uid[uid]["jsonData"]["defaultBucket"] == f"${{URBANPULSE_INFLUX__{bucket}}}"
    providers = yaml.safe_load(files["provisioning/dashboards/urbanpulse.yaml"])["providers"]
    assert [p["folderUid"] for p in providers] == [f.uid for f in FOLDERS]
    for provider in providers:
        folder = next(f for f in FOLDERS if f.uid == provider["folderUid"])
        assert provider["options"]["path"].endswith(f"/{folder.slug}")
        assert any(path.startswith(f"json/{folder.slug}/") for path in files)
    for board in BOARDS:
        assert json.loads(files[render.board_path(board)])["uid"] == board.uid


def test_grafana_ini_and_env_say_the_same_and_make_anonymous_visitors_viewers() -> None:
    import configparser

    files = render.files()
    ini = configparser.ConfigParser(comment_prefixes=(";", "#"))
    ini.read_string(files["provisioning/grafana.ini"])
    env = dict(
        line.split("=", 1)
        for line in files["provisioning/grafana.env"].splitlines()
        if line and not line.startswith("#")
    )
    from_ini = {
        render.env_name(section, key): value
        for section in ini.sections()
        for key, value in ini.items(section)
    }
    assert from_ini == env
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    city = next(b for b in BOARDS if b.uid == "urbanpulse-city-overview")
    assert home == f"{render.CONTAINER_DASHBOARDS}/{render.board_path(city).removeprefix('json/')}"
