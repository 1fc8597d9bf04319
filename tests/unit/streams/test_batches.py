"""Splitting a worker batch into runs of bounded size (``streams.batches.split_by_size``)."""

from streams.batches import split_by_size


def test_runs_keep_the_order_and_every_item() -> None:
    items = [3, 4, 2, 5, 1, 1]
    runs = list(split_by_size(items, lambda n: n, 6))
    assert runs == [[3], [4, 2], [5, 1], [1]]
    assert [n for run in runs for n in run] == items


def test_each_run_stays_within_the_limit_unless_one_item_exceeds_it() -> None:
    items = [2, 9, 2, 2, 2, 7]
    runs = list(split_by_size(items, lambda n: n, 6))
    assert runs == [[2], [9], [2, 2, 2], [7]]
    assert all(sum(run) <= 6 or len(run) == 1 for run in runs)


def test_a_batch_within_the_limit_is_one_run() -> None:
    assert list(split_by_size([b"ab", b"cd"], len, 4)) == [[b"ab", b"cd"]]


def test_no_items_no_runs() -> None:
    assert list(split_by_size([], len, 4)) == []
