"""What a person sees in a real browser: the local outbox, the confirmation email, the subscriber pages."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect, sync_playwright

from local.aws import client
from newsdesk.services.links import LinkPurpose, LinkSigner
from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

# Debian's chromium (`make test` installs it): Playwright's own browser downloads cannot run here.
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No calls home: the machine reaches no network but the package registries.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
ACCEPTED = "If this address can be subscribed, a confirmation email is on its way."


def _chromium() -> str:
    if os.access(CHROMIUM, os.X_OK):
        return str(CHROMIUM)
    message = f"{CHROMIUM} (Debian's chromium) is missing; `make test` installs it"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run the browser tests, not skip them", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    expect.set_options(timeout=TIMEOUT_MS)
    # launch() gives each run a fresh temporary profile and removes it on close.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def new_address() -> str:
    return f"reader-{secrets.token_hex(6)}@example.com"


def subscribe(local_stack: LocalStack, address: str) -> None:
    reply = local_stack.request("POST", "/subscribers", json_body={"email": address})
    assert reply.status == 202, reply.body


def unsubscribe_url(local_stack: LocalStack, address: str) -> str:
    # No route hands out unsubscribe links before a newsletter goes out: sign one as the product does,
    # with the local stack's own secret, read from its embedded AWS.
    secrets_manager = client("secretsmanager", local_stack.aws_endpoint, local_stack.region)
    secret = secrets_manager.get_secret_value(SecretId=local_stack.physical_name("SigningSecret"))["SecretString"]
    return LinkSigner(secret.encode(), local_stack.api_url).url(LinkPurpose.UNSUBSCRIBE, address)


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def open_email_to(page: Page, local_stack: LocalStack, address: str) -> FrameLocator:
    """Open the outbox page, pick the one email sent to `address`, and return its rendered HTML."""
    page.goto(f"{local_stack.api_url}/_local/")
    expect(heading(page)).to_have_text("Local outbox")
    listed = page.get_by_role("navigation", name="Sent emails").get_by_role("row").filter(has_text=address)
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Confirm your subscription to")
    listed.get_by_role("link").click()
    shown = page.get_by_role("region", name="Selected email")
    expect(shown).to_contain_text(address)  # the To header
    expect(shown.get_by_role("heading", level=2).first).to_contain_text("Confirm your subscription to")
    expect(shown).to_contain_text("To confirm, open this link:")  # the text part
    return shown.frame_locator("iframe")


def tampered(url: str) -> str:
    parts = urlsplit(url)
    token = parse_qs(parts.query)["token"][0]
    # One character of the signed payload (a full 6-bit base64 digit, so the bytes really change).
    token = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    return urlunsplit(parts._replace(query=urlencode({"token": token})))


def test_a_reader_confirms_from_the_outbox_then_unsubscribes(page: Page, local_stack: LocalStack) -> None:
    address = new_address()
    subscribe(local_stack, address)

    email = open_email_to(page, local_stack, address)
    confirm = email.get_by_role("link", name="Yes, subscribe me")
    expect(confirm).to_be_visible()
    expect(email.get_by_text("Someone (we hope you) asked to receive")).to_be_visible()
    # The email's links open in a new tab, as from a mail program.
    with page.context.expect_page() as opened:
        confirm.click()
    confirmed = opened.value
    # The link only shows a button (mail scanners follow links); the reader presses it.
    expect(heading(confirmed)).to_have_text("Confirm your subscription")
    confirmed.get_by_role("button", name="Confirm my subscription").click()
    expect(heading(confirmed)).to_have_text("You are subscribed")
    expect(confirmed.get_by_text("Thank you: your subscription is confirmed.")).to_be_visible()

    page.goto(unsubscribe_url(local_stack, address))
    expect(heading(page)).to_have_text("Unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(heading(page)).to_have_text("You are unsubscribed")
    expect(page.get_by_text("You will not receive these emails any more.")).to_be_visible()


def test_an_altered_link_offers_to_subscribe_again(page: Page, local_stack: LocalStack) -> None:
    address, retry = new_address(), new_address()
    subscribe(local_stack, address)
    link = open_email_to(page, local_stack, address).get_by_role("link", name="Yes, subscribe me")
    href = link.get_attribute("href")
    assert href is not None

    page.goto(tampered(href))
    expect(heading(page)).to_have_text("This link does not work")
    expect(page.get_by_role("button", name="Subscribe again")).to_be_visible()
    page.get_by_label("Your email address").fill(retry)
    page.get_by_role("button", name="Subscribe again").click()
    expect(page.get_by_role("status")).to_have_text(ACCEPTED)

    # And the new address's confirmation email arrives in the outbox.
    open_email_to(page, local_stack, retry)
