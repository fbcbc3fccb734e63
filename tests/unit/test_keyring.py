"""The keyring: what was made before key ids keeps working, what a rotation makes names its key, a key id the
keyring does not hold is refused like any bad link, and recipient keys never change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsdesk.errors import ConfigurationError
from newsdesk.models.keys import FIRST_KEY_ID, Keyring, key_id_of, labelled
from newsdesk.services.keys import SigningKeys
from newsdesk.services.links import InvalidLink, LinkPurpose, LinkSigner, Pseudonyms
from newsdesk.services.recipients import RecipientKeys
from newsdesk.services.webhooks import WebhookSecrets

API = "https://api.example.org"
# Made by the release before key ids (commit 28463a6) with this stack secret, and kept here as it made them:
# links like these are in people's inboxes, and a webhook secret like this one is in the table.
SECRET_BEFORE_KEY_IDS = "a-stack-secret-from-before-key-ids"
READER = "reader@example.org"
UNSUBSCRIBE_BEFORE_KEY_IDS = (
    "eyJqIjoiY0ZyWktGWFNENV92Zk55ZEp4Ukd5eGx3QzNyalpjZmxERE1aT1ZDSjVWanRDMXRpc3Vjd2dnTWpCRVAza3g5eW5ZTlFyQlJw"
    "YTI5UTZvWjYxVlJBTnZsaW9EUHBsTVg1QnNWNk1RIn0.axTNmA.cO7rfs7XWPA6RtllkLCiofCLzDc"
)
PREFERENCES_BEFORE_KEY_IDS = (
    "eyJzIjoicXdtaDN4cVZPUUFzdHBxMjM0T1NMZUxKQWxWSFY3NnFHWWdqQXYyX3p2T3N5VlkyMl9raFdKamE2NlNhNFEifQ.axTNmA."
    "bId2d7COtkDEl2RiMQbPf_JunjU"
)
WEBHOOK_SECRET_SEALED_BEFORE_KEY_IDS = "9/mAljSovlY3ZQs3vbvfJW+R9M/xbz1plBIlt5ewMonhaa6+9WCJbh8V8RPVCISr97w/Sv4="
RECIPIENT_KEY_BEFORE_KEY_IDS = "51cd58967a5f9441974e2024979953cc"
MAILBOX_PSEUDONYM_BEFORE_KEY_IDS = "e8e971f0f94d7e922728e3c86f78de30"
WEBHOOK = "wh_0000000000000001"
NOW = datetime.now(UTC)


def first() -> Keyring:
    """The secret as the stack made it, read as a keyring."""
    return Keyring.parse(SECRET_BEFORE_KEY_IDS)


def rotated(times: int = 1) -> Keyring:
    keyring = first()
    for n in range(times):
        keyring = keyring.rotated(f"new-key-{n}", NOW + timedelta(days=n))
    return keyring


def links(keyring: Keyring) -> LinkSigner:
    return LinkSigner(SigningKeys(keyring), API)


# ------------------------------------------------------------------------------------ before key ids


def test_the_stacks_first_secret_is_key_0_and_the_identifiers_key() -> None:
    keyring = first()

    assert (keyring.current, list(keyring.keys)) == (FIRST_KEY_ID, [FIRST_KEY_ID])
    assert keyring.current_key == keyring.identifier_key == SECRET_BEFORE_KEY_IDS.encode()


@pytest.mark.parametrize("keyring", [first(), rotated(), rotated(3)], ids=["before", "rotated", "rotated-3"])
def test_links_in_emails_sent_before_key_ids_still_open_before_and_after_rotations(keyring: Keyring) -> None:
    unsubscribe = links(keyring).open(LinkPurpose.UNSUBSCRIBE, UNSUBSCRIBE_BEFORE_KEY_IDS)
    preferences = links(keyring).open(LinkPurpose.PREFERENCES, PREFERENCES_BEFORE_KEY_IDS)

    assert (unsubscribe.email, unsubscribe.details) == (READER, {"d": "article-harbour"})
    assert (preferences.email, preferences.details) == (READER, {})


def test_a_confirmation_link_made_just_before_the_change_still_confirms_after_it() -> None:
    # A token with key id 0 is the previous release's token behind "0~": the same key, salt and payload.
    token_of_key_0 = links(first()).token(LinkPurpose.CONFIRM, READER)
    made_before = token_of_key_0.removeprefix(labelled(FIRST_KEY_ID, ""))

    assert links(rotated()).email(LinkPurpose.CONFIRM, made_before) == READER


@pytest.mark.parametrize("keyring", [first(), rotated(), rotated(3)], ids=["before", "rotated", "rotated-3"])
def test_recipient_keys_and_pseudonyms_are_what_they_were_before_and_never_rotate(keyring: Keyring) -> None:
    assert RecipientKeys(keyring.identifier_key).of(READER) == RECIPIENT_KEY_BEFORE_KEY_IDS
    assert Pseudonyms(keyring.identifier_key).of("mailbox", READER) == MAILBOX_PSEUDONYM_BEFORE_KEY_IDS


def test_a_webhook_secret_sealed_before_key_ids_opens_and_is_sealed_again_under_the_current_key() -> None:
    before, after = WebhookSecrets(SigningKeys(first())), WebhookSecrets(SigningKeys(rotated()))

    assert before.open(WEBHOOK, WEBHOOK_SECRET_SEALED_BEFORE_KEY_IDS) == "whsec_from-before-key-ids"
    assert before.sealed_with_current_key(WEBHOOK_SECRET_SEALED_BEFORE_KEY_IDS)
    assert after.open(WEBHOOK, WEBHOOK_SECRET_SEALED_BEFORE_KEY_IDS) == "whsec_from-before-key-ids"
    assert not after.sealed_with_current_key(WEBHOOK_SECRET_SEALED_BEFORE_KEY_IDS)
    resealed = after.seal(WEBHOOK, "whsec_from-before-key-ids")
    assert key_id_of(resealed)[0] == "1"
    assert after.sealed_with_current_key(resealed)
    assert after.open(WEBHOOK, resealed) == "whsec_from-before-key-ids"


# ----------------------------------------------------------------------------------------- rotations


def test_what_is_made_names_the_current_key_and_opens_for_as_long_as_that_key_is_kept() -> None:
    made_before = links(first()).token(LinkPurpose.UNSUBSCRIBE, READER, {"d": "article-1"})
    keyring = rotated()
    made_after = links(keyring).token(LinkPurpose.UNSUBSCRIBE, READER)

    assert (key_id_of(made_before)[0], key_id_of(made_after)[0]) == ("0", "1")
    assert links(keyring).open(LinkPurpose.UNSUBSCRIBE, made_before).details == {"d": "article-1"}
    assert links(keyring).email(LinkPurpose.UNSUBSCRIBE, made_after) == READER
    assert links(rotated(3)).email(LinkPurpose.UNSUBSCRIBE, made_after) == READER
    with pytest.raises(InvalidLink):  # retired
        links(keyring.without("0")).open(LinkPurpose.UNSUBSCRIBE, made_before)
    with pytest.raises(InvalidLink):  # and so is what was made before key ids
        links(keyring.without("0")).open(LinkPurpose.UNSUBSCRIBE, UNSUBSCRIBE_BEFORE_KEY_IDS)


@pytest.mark.parametrize(
    "label",
    ["7", "999999", "x", "", "1.5", "-1", "0" * 7],
    ids=["unknown", "unknown-long", "letters", "empty", "dots", "negative", "too-long"],
)
def test_a_key_id_the_keyring_does_not_hold_is_refused_like_any_bad_link(label: str) -> None:
    made = links(rotated()).token(LinkPurpose.UNSUBSCRIBE, READER)
    _, signed = key_id_of(made)

    with pytest.raises(InvalidLink, match="not valid"):
        links(rotated()).open(LinkPurpose.UNSUBSCRIBE, f"{label}~{signed}")


def test_a_token_labelled_with_another_kept_key_than_the_one_that_made_it_does_not_open() -> None:
    keyring = rotated()
    _, signed = key_id_of(links(keyring).token(LinkPurpose.PREFERENCES, READER))

    with pytest.raises(InvalidLink):
        links(keyring).open(LinkPurpose.PREFERENCES, labelled("0", signed))
    with pytest.raises(InvalidLink):
        links(keyring).open(LinkPurpose.PREFERENCES, signed)  # without its label: taken for key 0's


def test_a_retired_keys_webhook_secrets_do_not_open_and_say_why() -> None:
    sealed = WebhookSecrets(SigningKeys(first())).seal(WEBHOOK, "whsec_x")

    with pytest.raises(ValueError, match="no key '0'"):
        WebhookSecrets(SigningKeys(rotated().without("0"))).open(WEBHOOK, sealed)


def test_a_key_id_the_cached_keyring_lacks_is_looked_up_once_in_the_secret() -> None:
    stale, fresh = first(), rotated()
    made_after_the_rotation = links(fresh).token(LinkPurpose.UNSUBSCRIBE, READER)
    reads: list[str] = []

    def read_secret_again() -> Keyring:
        reads.append("read")
        return fresh

    signer = LinkSigner(SigningKeys(stale, reload=read_secret_again), API)

    assert signer.email(LinkPurpose.UNSUBSCRIBE, made_after_the_rotation) == READER
    assert signer.email(LinkPurpose.UNSUBSCRIBE, made_after_the_rotation) == READER
    with pytest.raises(InvalidLink):
        signer.open(LinkPurpose.UNSUBSCRIBE, "5~" + key_id_of(made_after_the_rotation)[1])
    assert reads == ["read"]
    # The reader found the new key, so what it makes now is made with it.
    assert key_id_of(signer.token(LinkPurpose.UNSUBSCRIBE, READER))[0] == "1"


# ------------------------------------------------------------------------------------ the secret itself


def test_a_rotation_keeps_every_key_records_when_each_was_current_and_never_touches_identifiers() -> None:
    keyring = rotated(2)

    assert keyring.current == "2"
    assert sorted(keyring.keys) == ["0", "1", "2"]
    assert keyring.keys["0"].superseded_at == NOW
    assert (keyring.keys["1"].created_at, keyring.keys["1"].superseded_at) == (NOW, NOW + timedelta(days=1))
    assert keyring.keys["2"].superseded_at is None
    assert keyring.identifiers == SECRET_BEFORE_KEY_IDS
    assert Keyring.parse(keyring.secret_string()) == keyring
    assert keyring.without("0").identifiers == SECRET_BEFORE_KEY_IDS
    with pytest.raises(ValueError, match="current"):
        keyring.without("2")


@pytest.mark.parametrize(
    "value",
    [
        '{"current": "1", "keys": {"0": {"secret": "s3cr3t-value"}}, "identifiers": "s3cr3t-value"}',
        '{"current": "0", "keys": {"zero": {"secret": "s3cr3t-value"}}, "identifiers": "s3cr3t-value"}',
        '{"current": "0", "keys": {"0": {"secret": "s3cr3t-value"}}}',
        '{"current": "0", "keys": {"0": "s3cr3t-value"}, "identifiers": "s3cr3t-value"}',
        '{"current": "0", ',
    ],
    ids=["current-missing", "bad-id", "no-identifiers", "key-not-an-object", "broken-json"],
)
def test_a_secret_that_is_not_a_keyring_is_a_configuration_error_that_does_not_quote_it(value: str) -> None:
    with pytest.raises(ConfigurationError, match="not a keyring") as raised:
        Keyring.parse(value)

    assert "s3cr3t" not in str(raised.value)
