"""How many partitions a delivery's ledger takes, and which one holds a recipient (docs/capacity.md)."""

from __future__ import annotations

import pytest

from newsdesk.dal.ledger import (
    MAX_SHARDS,
    MIN_SHARDS,
    PARTITION_WRITES_PER_SECOND,
    WRITES_PER_RECIPIENT,
    LedgerShape,
    delivery_of,
    shards_for,
)


@pytest.mark.parametrize(("rate", "shards"), [(1, 8), (14, 8), (100, 8), (1000, 8), (1400, 16), (5000, 32)])
def test_a_ledger_takes_enough_partitions_for_half_their_writes_at_its_send_rate(rate: int, shards: int) -> None:
    assert shards_for(rate) == shards
    assert WRITES_PER_RECIPIENT * rate / shards <= PARTITION_WRITES_PER_SECOND / 2


def test_the_partitions_stop_at_a_bound_that_keeps_a_page_of_recipients_bounded() -> None:
    assert shards_for(10**9) == MAX_SHARDS
    assert MIN_SHARDS <= shards_for(0.1) <= MAX_SHARDS


def test_a_recipient_is_always_in_the_same_partition_of_its_delivery() -> None:
    ledger = LedgerShape("article-0123456789abcdef", 8)
    keys = [f"{n:032x}" for n in range(400)]

    partitions = [ledger.partition(key) for key in keys]

    assert partitions == [LedgerShape("article-0123456789abcdef", 8).partition(key) for key in keys]
    assert set(partitions) == set(ledger.partitions())
    assert all(delivery_of(partition) == ledger.delivery_id for partition in partitions)


def test_a_ledger_started_before_partitions_is_its_delivery_alone() -> None:
    ledger = LedgerShape("digest-20261130T080000Z")

    assert ledger.partition("0" * 32) == "digest-20261130T080000Z"
    assert ledger.partitions() == ["digest-20261130T080000Z"]
    assert delivery_of(ledger.partition("0" * 32)) == "digest-20261130T080000Z"
