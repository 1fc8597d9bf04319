"""The publisher's bookkeeping (pure): the run's summary and the send log's lines."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime

from simulators.faults import FaultRecord, ingest_message_id
from simulators.formats import Message
from simulators.publisher import RunLogs, RunSummary, send_log_entry
from simulators.scenario import FAULTS
from tests.unit.simulators.helpers import run, town

OBSERVED = datetime(2026, 3, 2, 5, 0, 7, tzinfo=UTC)


def sent_messages() -> list[Message]:
    return [i.message for i in run(town(), hours=0.25) if i.message]


def dropout(missing: int) -> FaultRecord:
    return FaultRecord(
        kind="fault",
        fault="dropout",
        tenant="demo",
        device_id="air-001",
        sensor_ids=("air-001",),
        format="json",
        topic="urbanpulse/demo/air-001/json",
        observed_at=OBSERVED,
        expect="flag:gap",
        detail={"missing": missing},
    )


def test_the_summary_counts_messages_readings_formats_and_event_times() -> None:
    messages = sent_messages()
    summary = RunSummary()
    for message in messages:
        summary.count_message(message)
    assert summary.messages == len(messages)
    assert summary.readings == sum(len(m.readings) for m in messages)
    assert summary.personal == sum(len(m.personal) for m in messages) > 0  # the people counters
    assert summary.by_format.total() == len(messages) and len(summary.by_format) > 3
    assert (summary.first_event, summary.last_event) == (
        messages[0].observed_at,
        messages[-1].observed_at,
    )


def test_the_summary_counts_faults_and_what_dropouts_did_not_send() -> None:
    summary = RunSummary()
    privacy = replace(dropout(0), kind="privacy", fault="personal")
    summary.count_records([dropout(4), dropout(6), privacy])
    assert summary.faults == {"dropout": 2}  # privacy lines are no fault
    assert summary.not_sent == 10
    faulty = [r for i in run(town(**dict.fromkeys(FAULTS, 0.05)), hours=1) for r in i.records]
    summary.count_records(faulty)
    assert set(summary.faults) == set(FAULTS)


def test_a_send_log_line_names_the_message_as_the_ingestor_will() -> None:
    message = sent_messages()[0]
    line = send_log_entry(message, sent_at=1772427607.25)
    assert line == {
        "topic": message.topic,
        "message_id": ingest_message_id(message.topic, message.payload),
        "observed_at": message.observed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sent_at": 1772427607.25,
        "readings": len(message.readings),
        "faults": [],
    }


def test_the_logs_write_one_json_line_each_and_nothing_without_a_file() -> None:
    message = sent_messages()[0]
    truth, sends = io.StringIO(), io.StringIO()
    logs = RunLogs(ground_truth=truth, send_log=sends)
    logs.sent(message, 1.5)
    logs.truth([dropout(4), dropout(5)])
    logs.flush()
    assert [json.loads(line)["detail"]["missing"] for line in truth.getvalue().splitlines()] == [
        4,
        5,
    ]
    assert json.loads(sends.getvalue()) == send_log_entry(message, 1.5)
    RunLogs().sent(message, 1.5)  # neither file: nothing to write, nothing fails
    RunLogs().truth([dropout(4)])
