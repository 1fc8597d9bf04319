"""PUBACKs leave in arrival order, whatever order Kafka confirms in."""

from hypothesis import given
from hypothesis import strategies as st

from ingest.acks import AckTracker


def test_acks_wait_for_earlier_messages() -> None:
    tracker = AckTracker()
    tracker.add(1, 1)
    tracker.add(2, 1)
    assert tracker.confirm(2) == []
    assert tracker.confirm(1) == [1, 2]
    assert len(tracker) == 0


def test_a_batch_needs_every_confirmation() -> None:
    tracker = AckTracker()
    tracker.add(1, 3)
    assert tracker.confirm(1) == []
    assert tracker.confirm(1) == []
    assert tracker.confirm(1) == [1]


@given(st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=30), st.randoms())
def test_every_message_is_acked_once_in_order(needs: list[int], rnd) -> None:  # type: ignore[no-untyped-def]
    tracker = AckTracker()
    confirmations = []
    for token, count in enumerate(needs):
        tracker.add(token, count)
        confirmations += [token] * count
    rnd.shuffle(confirmations)
    released = [t for c in confirmations for t in tracker.confirm(c)]
    assert released == list(range(len(needs)))
