"""What Newsdesk accepts as an address, and which addresses reach the same inbox."""

from __future__ import annotations

import pytest

from newsdesk.models.addresses import mailbox, normalize_address


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Reader@EXAMPLE.org ", "reader@example.org"),
        ("leser@bücher.de", "leser@xn--bcher-kva.de"),
        ("LESER@XN--BCHER-KVA.DE", "leser@xn--bcher-kva.de"),
        ("a+tag@example.org", "a+tag@example.org"),
    ],
)
def test_accepted_addresses_are_kept_in_one_ascii_form(given: str, stored: str) -> None:
    assert normalize_address(given) == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("jörg@example.org", "SMTPUTF8"),
        ("Ada <ada@example.org>", "display name"),
        ('"a b"@example.org', "Quoting"),
        ("a@[192.0.2.1]", "IP address"),
        ("a@localhost", "period"),
        ("a@b.test", "special-use"),
        ("x" * 64 + "@" + ".".join(["d" * 60] * 4) + ".org", "too long"),
    ],
)
def test_addresses_that_cannot_be_mailed_are_refused_with_a_reason(given: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_address(given)


@pytest.mark.parametrize(
    ("address", "inbox"),
    [
        ("alice@gmail.com", "alice@gmail.com"),
        ("a.l.ice+news@googlemail.com", "alice@gmail.com"),
        ("al.ice@example.org", "al.ice@example.org"),  # dots count elsewhere
        ("al.ice+x+y@example.org", "al.ice@example.org"),
    ],
)
def test_variants_of_one_inbox_have_one_mailbox(address: str, inbox: str) -> None:
    assert mailbox(address) == inbox
