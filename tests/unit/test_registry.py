import pytest

from urbanpulse.registry import RegistryError, RegistryFile, decode_registry, parse_registry

YAML = """
sensors:
  - {tenant: town, sensor_id: air-1, district: centre, sensor_type: sds011, licence: CC-BY-4.0,
     lat: 52.1, lon: 5.1, interval_s: 60}
  - {tenant: town, sensor_id: noise-1, privacy: restricted}
"""
CSV = """tenant,sensor_id,district,sensor_type,licence,privacy,lat,lon,alt,interval_s
town,air-1,centre,sds011,CC-BY-4.0,open,52.1,5.1,,60
town,noise-1,,,,restricted,,,,
"""


def test_yaml_and_csv_say_the_same() -> None:
    assert parse_registry(YAML, "yaml") == parse_registry(CSV, "csv")
    info = parse_registry(CSV, "csv")[("town", "air-1")]
    assert info.district == "centre" and info.interval_s == 60
    assert info.location is not None and info.location.lat == 52.1
    assert parse_registry(CSV, "csv")[("town", "noise-1")].location is None


@pytest.mark.parametrize(
    "text",
    [
        "sensors: [{tenant: town, sensor_id: a, lat: 95}]",
        "sensors: [{tenant: town, sensor_id: a, colour: red}]",
        "sensors: [{tenant: town, sensor_id: a}, {tenant: town, sensor_id: a}]",
        "sensors: 3",
    ],
)
def test_bad_registries_say_why(text: str) -> None:
    with pytest.raises(RegistryError):
        parse_registry(text, "yaml")


def test_file_is_reloaded_when_it_changes_and_a_bad_edit_keeps_the_last(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sensors.csv"
    path.write_text(CSV)
    now = [0.0]
    registry = RegistryFile(str(path), check_s=10, clock=lambda: now[0])
    assert set(registry.current()) == {("town", "air-1"), ("town", "noise-1")}
    path.write_text(CSV + "town,new-1,north,,,,,,,\n")
    assert ("town", "new-1") not in registry.current()  # not checked again yet
    now[0] = 11
    assert registry.current()[("town", "new-1")].district == "north"
    path.write_text("tenant,sensor_id,lat\ntown,x,999\n")
    now[0] = 22
    assert ("town", "new-1") in registry.current()


def test_no_registry_configured() -> None:
    registry = RegistryFile("", check_s=10)
    assert not registry.enabled and registry.current() == {}


def test_a_registry_that_is_not_utf8_keeps_the_last_good_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sensors.csv"
    path.write_text(CSV)
    now = [0.0]
    registry = RegistryFile(str(path), check_s=10, clock=lambda: now[0])
    path.write_bytes(CSV.encode() + "town,caf\xe9-1,,,,,,,,\n".encode("latin-1"))
    now[0] = 11
    assert set(registry.current()) == {("town", "air-1"), ("town", "noise-1")}
    path.write_text(CSV + "town,new-1,north,,,,,,,\n")  # fixed: read again
    now[0] = 22
    assert ("town", "new-1") in registry.current()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"tenant,sensor_id\ntown,caf\xe9\n", "csv"),  # Latin-1
        (b"\xff\xfet\x00e\x00n\x00", "yaml"),  # UTF-16
    ],
)
def test_text_that_is_not_utf8_is_a_registry_error(data: bytes, kind: str) -> None:
    with pytest.raises(RegistryError, match="not UTF-8"):
        decode_registry(data, f"sensors.{kind}")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("tenant,sensor_id\ntown," + "x" * 200_000 + "\n", "csv"),  # csv.Error: field limit
        ('tenant,sensor_id\n"town,air\n', "csv"),  # unterminated quote is read to the end
        ("sensors: [{tenant: town", "yaml"),  # yaml.YAMLError
        ("[" * 5000, "yaml"),  # deeply nested
    ],
)
def test_garbage_is_a_registry_error_not_a_crash(text: str, kind: str) -> None:
    with pytest.raises(RegistryError):
        parse_registry(text, kind)  # type: ignore[arg-type]
