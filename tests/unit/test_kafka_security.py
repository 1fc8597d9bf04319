"""The Kafka security settings, and how each client library's configuration maps them."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from urbanpulse.kafka import aiokafka_config, client_config, faust_credentials
from urbanpulse.settings import KafkaSettings, Settings

SASL = {"sasl_username": "town", "sasl_password": SecretStr("s3cret")}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    kafka = KafkaSettings(bootstrap="k1:9092,k2:9092")
    assert client_config(kafka) == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "PLAINTEXT",
    }
    assert aiokafka_config(kafka) == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(kafka) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_maps_to_every_client(mechanism: str) -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]  # a literal, checked by pydantic
        **SASL,  # type: ignore[arg-type]
    )
    assert client_config(kafka) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": "town",
        "sasl.password": "s3cret",
    }
    assert aiokafka_config(kafka) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "town",
        "sasl_plain_password": "s3cret",
    }
    credentials = faust_credentials(kafka)
    assert isinstance(credentials, SASLCredentials)
    # What Faust hands to aiokafka is what the API's live feed uses.
    assert credentials_to_aiokafka_auth(credentials) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "town",
        "sasl_plain_password": "s3cret",
        "ssl_context": None,
    }


def test_sasl_ssl_verifies_the_brokers_with_the_system_cas_by_default() -> None:
    kafka = KafkaSettings(security_protocol="SASL_SSL", **SASL)  # type: ignore[arg-type]
    assert client_config(kafka)["security.protocol"] == "SASL_SSL"
    assert "ssl.ca.location" not in client_config(kafka)  # librdkafka probes the system CAs
    context = aiokafka_config(kafka)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    auth = credentials_to_aiokafka_auth(faust_credentials(kafka))
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "PLAIN"
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_tls_files_reach_librdkafka() -> None:
    kafka = KafkaSettings(
        security_protocol="SSL",
        ssl_ca_file="/etc/kafka/ca.pem",
        ssl_cert_file="/etc/kafka/client.pem",
        ssl_key_file="/etc/kafka/client.key",
    )
    assert client_config(kafka) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SSL",
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.certificate.location": "/etc/kafka/client.pem",
        "ssl.key.location": "/etc/kafka/client.key",
    }


def test_ssl_without_files_gives_faust_a_verifying_context() -> None:
    kafka = KafkaSettings(security_protocol="SSL")
    credentials = faust_credentials(kafka)
    assert isinstance(credentials, SSLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert set(aiokafka_config(kafka)) == {"bootstrap_servers", "security_protocol", "ssl_context"}


@pytest.mark.parametrize(
    ("section", "complaint"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs URBANPULSE_KAFKA__SASL_USERNAME"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "town"},
            "needs URBANPULSE_KAFKA__SASL_USERNAME and URBANPULSE_KAFKA__SASL_PASSWORD",
        ),
        (
            {"sasl_username": "town", "sasl_password": "s3cret"},
            "SECURITY_PROTOCOL is PLAINTEXT: set it to SASL_SSL",
        ),
        ({"ssl_ca_file": "/ca.pem"}, "SSL_\\* files are set but"),
        (
            {"security_protocol": "SASL_PLAINTEXT", "ssl_ca_file": "/ca.pem", **SASL},
            "SECURITY_PROTOCOL is SASL_PLAINTEXT: set it to SSL or SASL_SSL",
        ),
        ({"security_protocol": "SSL", "ssl_cert_file": "/c.pem"}, "go together"),
        ({"security_protocol": "SSL", "ssl_key_file": "/c.key"}, "go together"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_incomplete_security_sections_are_refused(
    section: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        KafkaSettings(**section)  # type: ignore[arg-type]


def test_the_section_comes_from_the_environment_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("URBANPULSE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("URBANPULSE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("URBANPULSE_KAFKA__SASL_USERNAME", "town")
    monkeypatch.setenv("URBANPULSE_KAFKA__SASL_PASSWORD", "s3cret")
    settings = Settings()
    assert client_config(settings.kafka)["sasl.mechanism"] == "SCRAM-SHA-512"
    assert client_config(settings.kafka)["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)


def test_the_password_may_come_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-a-file\n")
    kafka = KafkaSettings(
        security_protocol="SASL_SSL", sasl_username="town", sasl_password_file=str(secret)
    )
    assert client_config(kafka)["sasl.password"] == "from-a-file"
    with pytest.raises(ValidationError, match="cannot read the secret file"):
        KafkaSettings(
            security_protocol="SASL_SSL",
            sasl_username="town",
            sasl_password_file=str(tmp_path / "missing"),
        )
