"""paho's MQTT 5 properties decoded with shared tables: the same values as paho's own class."""

import paho.mqtt
import pytest
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

from ingest.paho_properties import CHECKED, SharedTables, install


def publish_properties() -> bytes:
    """A PUBLISH's properties, every kind of value a PUBLISH may carry."""
    props = Properties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 3600
    props.ContentType = "application/json"
    props.ResponseTopic = "urbanpulse/replies"
    props.CorrelationData = b"\x00\x01"
    props.UserProperty = ("site", "north")
    props.UserProperty = ("gateway", "gw-7")
    props.SubscriptionIdentifier = 42
    props.TopicAlias = 3
    return bytes(props.pack())


def values(props: Properties) -> dict[str, object]:
    return {k: v for k, v in vars(props).items() if k not in ("packetType", *SharedTables.TABLES)}


def test_the_installed_paho_is_one_the_shared_tables_were_checked_against() -> None:
    assert paho.mqtt.__version__.startswith(CHECKED), (
        f"paho-mqtt {paho.mqtt.__version__}: check ingest/paho_properties.py against its "
        "Properties, then add the version to CHECKED"
    )
    assert install() and install()  # idempotent
    assert _packet.Properties is SharedTables


def test_shared_tables_decode_the_same_properties_as_paho() -> None:
    packed = publish_properties()
    theirs, ours = Properties(PacketTypes.PUBLISH), SharedTables(PacketTypes.PUBLISH)
    assert theirs.unpack(packed)[1] == ours.unpack(packed)[1] == len(packed)  # bytes read
    assert values(ours) == values(theirs) and len(values(ours)) == 8
    assert str(ours) == str(theirs) and ours.json() == theirs.json()
    # unpacking again (paho clears first) keeps none of the properties before
    empty = b"\x00"
    ours.unpack(empty)
    assert values(ours) == {} and ours.isEmpty()


def test_a_publish_decoded_by_paho_carries_the_shared_tables() -> None:
    install()
    topic, props = b"urbanpulse/town/air-1/json", publish_properties()
    body = len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big") + props + b"{}"
    packet = _packet.decode_publish(0x32, body, paho.mqtt.enums.MQTTProtocolVersion.MQTTv5)
    assert isinstance(packet.properties, SharedTables)
    assert packet.mid == 7 and packet.payload == b"{}"
    assert packet.properties.UserProperty == [("site", "north"), ("gateway", "gw-7")]


def test_shared_tables_still_refuse_what_paho_refuses() -> None:
    ours = SharedTables(PacketTypes.PUBLISH)
    with pytest.raises(MQTTException):
        ours.SessionExpiryInterval = 10  # not a PUBLISH property
    with pytest.raises(MQTTException):
        ours.NoSuchProperty = 1
