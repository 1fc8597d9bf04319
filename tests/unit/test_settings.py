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
