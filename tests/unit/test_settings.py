from pathlib import Path

import pytest

from urbanpulse.settings import Settings


def test_defaults_match_the_local_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("URBANPULSE_"):
            monkeypatch.delenv(name)
    settings = Settings()
    assert (settings.mqtt.host, settings.mqtt.port) == ("127.0.0.1", 1883)
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.influx.url == "http://127.0.0.1:8086"
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8000)


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANPULSE_MQTT__PORT", "11883")
    monkeypatch.setenv("URBANPULSE_MQTT__TOPICS", '["urbanpulse/a/+/json"]')
    monkeypatch.setenv("URBANPULSE_INFLUX__TOKEN", "s3cret")
    settings = Settings()
    assert settings.mqtt.port == 11883
    assert settings.mqtt.topics == ["urbanpulse/a/+/json"]
    assert settings.influx.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("URBANPULSE_MQTT__MAX_INFLIGHT", "0")
    with pytest.raises(ValueError, match="max_inflight"):
        Settings()


def test_secrets_can_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "mqtt").write_text("p4ss\n")  # as `echo p4ss > file` writes it
    (tmp_path / "token").write_text("read-only-token")
    monkeypatch.setenv("URBANPULSE_MQTT__PASSWORD_FILE", str(tmp_path / "mqtt"))
    monkeypatch.setenv("URBANPULSE_INFLUX__TOKEN", "operator-token")
    monkeypatch.setenv("URBANPULSE_INFLUX__TOKEN_FILE", str(tmp_path / "token"))
    settings = Settings()
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "p4ss"
    assert settings.influx.token.get_secret_value() == "read-only-token"  # the file wins


def test_a_missing_secret_file_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("URBANPULSE_INFLUX__TOKEN_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"cannot read the secret file .*nowhere"):
        Settings()
