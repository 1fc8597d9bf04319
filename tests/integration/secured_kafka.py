"""A test's own Kafka broker with SASL and TLS listeners, from the jars of the local services.

The shared Kafka (9092) speaks PLAINTEXT only and must not be reconfigured, so the security
tests start a single KRaft node of their own on free ports, in a temporary folder, with:

* ``SASL_PLAINTEXT``: PLAIN (user ``urbanpulse``) and SCRAM-SHA-256/512 (the same user, its
  SCRAM credentials written at format time with ``--add-scram``, as KRaft wants);
* ``SASL_SSL``: the same mechanisms over TLS;
* ``SSL``: TLS with a required client certificate (mutual TLS).

The certificates come from a throw-away CA made with openssl (the server certificate also
serves as the client certificate: same CA, no usage restriction).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tests.integration.test_ingest_tls import make_certificates
from tests.support import REPO, free_port
from urbanpulse.settings import KafkaSettings

USER = "urbanpulse"
PASSWORD = "pulse-secret"  # a throw-away broker's test user
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
START_TIMEOUT_S = 120.0
CLUSTER_ID = "U3RhdHVzVGVzdEthZmthMQ"  # any 16 bytes, base64url


@dataclass(frozen=True, kw_only=True)
class SecuredKafka:
    """The running broker: its listeners and the files a client needs."""

    folder: Path
    sasl_port: int
    sasl_ssl_port: int
    ssl_port: int

    @property
    def ca_file(self) -> str:
        """The CA that signed the broker's certificate."""
        return str(self.folder / "ca.crt")

    def sasl(self, *, password: str = PASSWORD, **extra: Any) -> KafkaSettings:
        """Settings for the SASL_PLAINTEXT listener (PLAIN unless ``sasl_mechanism`` says)."""
        return KafkaSettings(
            bootstrap=f"127.0.0.1:{self.sasl_port}",
            security_protocol="SASL_PLAINTEXT",
            sasl_username=USER,
            sasl_password=SecretStr(password),
            **extra,
        )

    def sasl_ssl(self, **extra: Any) -> KafkaSettings:
        """Settings for the SASL_SSL listener, verifying the broker with the test CA."""
        return KafkaSettings(
            bootstrap=f"127.0.0.1:{self.sasl_ssl_port}",
            security_protocol="SASL_SSL",
            sasl_username=USER,
            sasl_password=SecretStr(PASSWORD),
            **({"ssl_ca_file": self.ca_file} | extra),
        )

    def mutual_tls(self, **extra: Any) -> KafkaSettings:
        """Settings for the SSL listener with a client certificate."""
        return KafkaSettings(
            bootstrap=f"127.0.0.1:{self.ssl_port}",
            security_protocol="SSL",
            **(
                {
                    "ssl_ca_file": self.ca_file,
                    "ssl_cert_file": str(self.folder / "server.crt"),
                    "ssl_key_file": str(self.folder / "server.key"),
                }
                | extra
            ),
        )


def kafka_lib() -> Path:
    """The Kafka jars deploy/local/services.sh installed."""
    lib = Path(os.environ.get("URBANPULSE_HOME", REPO / ".local")) / "kafka" / "lib"
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise AssertionError(f"no Kafka jars in {lib}: run `deploy/local/services.sh install`")
    return lib


def _properties(kafka: SecuredKafka, controller_port: int) -> str:
    jaas_plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{USER}" password="{PASSWORD}" user_{USER}="{PASSWORD}";'
    )
    jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    listeners = {
        "SASL_PLAINTEXT": kafka.sasl_port,
        "SASL_SSL": kafka.sasl_ssl_port,
        "SSL": kafka.ssl_port,
    }
    public = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listeners.items())
    jaas = [
        f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config="
        + (jaas_plain if mechanism == "PLAIN" else jaas_scram)
        for listener in ("SASL_PLAINTEXT", "SASL_SSL")
        for mechanism in MECHANISMS
    ]
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners={public},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners={public}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=SASL_PLAINTEXT",
        "listener.security.protocol.map="
        "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
        f"sasl.enabled.mechanisms={','.join(MECHANISMS)}",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        *jaas,
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={kafka.folder / 'keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={kafka.ca_file}",
        "listener.name.ssl.ssl.client.auth=required",
        f"log.dirs={kafka.folder / 'data'}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=2",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "default.replication.factor=1",
        "group.initial.rebalance.delay.ms=0",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def secured_kafka(folder: Path) -> Iterator[SecuredKafka]:
    """Start the broker in ``folder``, yield it once it serves, stop it afterwards."""
    lib = kafka_lib()
    make_certificates(folder)
    # Kafka's PEM key store: the private key (PKCS#8, unencrypted) followed by the certificate.
    keystore = (folder / "server.key").read_text() + (folder / "server.crt").read_text()
    (folder / "keystore.pem").write_text(keystore)
    kafka = SecuredKafka(
        folder=folder, sasl_port=free_port(), sasl_ssl_port=free_port(), ssl_port=free_port()
    )
    properties = folder / "server.properties"
    properties.write_text(_properties(kafka, controller_port=free_port()))
    log4j = f"-Dlog4j2.configurationFile={REPO / 'deploy/local/kafka/log4j2.properties'}"
    classpath = ["-cp", f"{lib}/*", log4j]
    scram = [f"--add-scram={m}=[name={USER},password={PASSWORD}]" for m in MECHANISMS[1:]]
    storage = ["kafka.tools.StorageTool", "format", "-t", CLUSTER_ID, "-c", str(properties)]
    subprocess.run(
        ["java", *classpath, *storage, *scram], check=True, capture_output=True, timeout=120
    )
    log = folder / "kafka.log"
    heap = ["-Xms128m", "-Xmx384m", "-XX:+UseSerialGC"]  # small: the machine is shared
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["java", *heap, *classpath, "kafka.Kafka", str(properties)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_started(process, log)
        yield kafka
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _wait_started(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while b"Kafka Server started" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the test's secured Kafka did not start:\n{tail}")
        time.sleep(0.5)
