from datetime import timedelta

from streams.alerts import DEFAULT_RULES, AlertRule, evaluate, rules_from_settings
from streams.windows import as_datetime
from urbanpulse.settings import AlertRuleSettings

MIN = 60_000_000
NOISE = AlertRule("noise_high", "noise_level", ">", 70.0, timedelta(minutes=15))


def run(rule: AlertRule, values: list[float]) -> list[tuple[str, int, int | None, float]]:
    episode = None
    events = []
    for i, value in enumerate(values):
        episode, event = evaluate(rule, episode, i * MIN, value, ("town", "n-1"))
        if event is not None:
            end = None if event.ended_at is None else event.ended_at.minute
            events.append((event.state, event.started_at.minute, end, event.value))
    return events


def test_threshold_must_hold_for_the_minimum_duration() -> None:
    assert run(NOISE, [71] * 15 + [60]) == []  # 14 minutes only
    assert run(NOISE, [75] * 16 + [60]) == [("open", 0, None, 75), ("closed", 0, 16, 75)]


def test_one_episode_with_its_peak_and_a_new_one_after_a_break() -> None:
    values = [60, *[72] * 10, 90, *[72] * 5, 50, *[80] * 16]
    assert run(NOISE, values) == [
        ("open", 1, None, 90),
        ("closed", 1, 17, 90),
        ("open", 18, None, 80),
    ]


def test_low_battery_opens_at_once() -> None:
    rule = AlertRule("low_battery", "battery_level", "<", 15.0)
    assert run(rule, [20, 10, 9, 30]) == [("open", 1, None, 10), ("closed", 1, 3, 9)]


def test_rules_from_settings() -> None:
    assert rules_from_settings(None) == DEFAULT_RULES
    [rule] = rules_from_settings(
        [
            AlertRuleSettings(
                name="hot", quantity="temperature", op=">=", value=30, min_duration_s=60
            )
        ]
    )
    assert rule.min_duration == timedelta(minutes=1) and rule.breached(30) and not rule.breached(29)
    assert as_datetime(0).isoformat() == "1970-01-01T00:00:00+00:00"
