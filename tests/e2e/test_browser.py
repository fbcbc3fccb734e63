"""What a person sees in a real browser: the local outbox, the confirmation email, the subscriber pages."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect, sync_playwright

from local.aws.embedded import client
from newsdesk.models.keys import Keyring
from newsdesk.services.keys import SigningKeys
from newsdesk.services.links import LinkPurpose, LinkSigner
from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e

# Debian's chromium (`make test` installs it): Playwright's own browser downloads cannot run here.
CHROMIUM = Path("/usr/bin/chromium")
SKIP_VARIABLE = "NEWSDESK_SKIP_BROWSER"
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
    if os.environ.get(SKIP_VARIABLE):
        message = f"{SKIP_VARIABLE} is set: the browser tests are skipped"
    elif os.access(CHROMIUM, os.X_OK):
        return str(CHROMIUM)
    else:
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
    # No route hands out unsubscribe links before a newsletter goes out: sign one as the product does.
    return link_signer(local_stack).url(LinkPurpose.UNSUBSCRIBE, address)


def link_signer(local_stack: LocalStack) -> LinkSigner:
    """Links as the product signs them, with the local stack's own keyring, read from its embedded AWS."""
    secrets_manager = client("secretsmanager", local_stack.aws_endpoint, local_stack.region)
    secret = secrets_manager.get_secret_value(SecretId=local_stack.physical_name("SigningSecret"))["SecretString"]
    return LinkSigner(SigningKeys(Keyring.parse(secret)), local_stack.api_url)


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


# ---------------------------------------------------------------------- every page, at a phone's and a desktop's width

WIDTHS = {"phone": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 800}}
TOPICS = {"harbour": "Harbour", "council": "Council"}

# Measured in the page: what a reader would see as broken, whatever the CSS that caused it.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const viewport = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > viewport) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth}px wide in ${viewport}px`);
  }
  for (const element of document.querySelectorAll("h1, p, button, input, label, fieldset, a")) {
    const box = element.getBoundingClientRect();
    if (box.width && (box.left < 0 || box.right > viewport + 0.5)) {
      problems.push(`${element.tagName} "${element.textContent.trim().slice(0, 30)}" runs off the screen`);
    }
  }
  const lines = (node) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    return [...range.getClientRects()].filter((rect) => rect.width > 0);
  };
  for (const label of document.querySelectorAll("label")) {
    const input = label.querySelector("input[type=radio], input[type=checkbox]");
    if (!input) continue;
    const name = label.textContent.trim().slice(0, 30);
    const box = input.getBoundingClientRect();
    const text = [...label.querySelectorAll("*"), label].flatMap((node) =>
      [...node.childNodes].filter((child) => child.nodeType === Node.TEXT_NODE && child.textContent.trim()));
    const rects = text.flatMap(lines);
    if (!rects.length) { problems.push(`"${name}" has no visible text`); continue; }
    const first = rects.reduce((a, b) => (b.top < a.top ? b : a));
    const left = Math.min(...rects.map((rect) => rect.left));
    const middle = (box.top + box.bottom) / 2;
    if (box.width > 30) problems.push(`the box of "${name}" is ${box.width}px wide`);
    if (box.left > label.getBoundingClientRect().left + 2) {
      problems.push(`the box of "${name}" is not at the line's start`);
    }
    if (left < box.right) problems.push(`the text of "${name}" runs under its box`);
    if (left - box.right > 16) problems.push(`the text of "${name}" is ${left - box.right}px from its box`);
    if (middle < first.top || middle > first.bottom) problems.push(`the box of "${name}" is not on its first line`);
  }
  return problems;
}"""
LINES_OF_TEXT = """(element) => {
  const text = [...element.childNodes].find((node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
  const range = document.createRange();
  range.selectNodeContents(text);
  return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
}"""


def assert_laid_out(page: Page, width: str, name: str) -> None:
    """No sideways scrolling, nothing off screen, every checkbox and radio button at the start of its label's
    first line with the text beside it; on a desktop, every choice's name and every button on one line."""
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert problems == [], f"{name} at {width} width: {problems}"
    if width == "desktop":
        for element in page.locator("label.choice > span, button").all():
            if element.is_visible():
                lines = element.evaluate(LINES_OF_TEXT)
                assert lines == 1, f"{name} at desktop width: {element.inner_text()!r} takes {lines} lines"


def signed(local_stack: LocalStack, purpose: LinkPurpose, address: str, details: dict[str, str] | None = None) -> str:
    return link_signer(local_stack).url(purpose, address, details)


@pytest.fixture(scope="module")
def harbour_delivery(local_stack: LocalStack) -> str:
    """A newsletter sent for the topic Harbour: the delivery an unsubscribe link names."""
    for slug, title in TOPICS.items():
        created = local_stack.request("POST", "/admin/topics", json_body={"slug": slug, "name": title}, editor=True)
        assert created.status in (201, 409), created.body
    article = local_stack.request("POST", "/admin/articles", editor=True, json_body={
        "title": "Ferry timetable changes", "author": "Ada", "body": "From Monday.", "tags": ["harbour"]})  # fmt: skip
    assert local_stack.request("POST", f"/admin/articles/{article.json()['id']}/publish", editor=True).status == 200
    return f"article-{article.json()['id']}"


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_reads_well_on_a_phone_and_a_desktop(
    browser: Browser, local_stack: LocalStack, harbour_delivery: str, width: str
) -> None:
    context = browser.new_context(viewport=WIDTHS[width])  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        address = new_address()
        choice = {"email": address, "name": "Rea", "topics": ["harbour", "council"]}
        signed_up = local_stack.request("POST", "/subscribers", json_body=choice)
        assert signed_up.status == 202
        href = (
            open_email_to(page, local_stack, address)
            .get_by_role("link", name="Yes, subscribe me")
            .get_attribute("href")
        )
        assert href is not None

        # Confirm
        page.goto(href)
        expect(heading(page)).to_have_text("Confirm your subscription")
        expect(page.get_by_text("You chose: Harbour and Council.")).to_be_visible()
        assert_laid_out(page, width, "the confirmation page")
        page.get_by_role("button", name="Confirm my subscription").click()
        expect(heading(page)).to_have_text("You are subscribed")
        assert_laid_out(page, width, "the confirmed page")

        # Preferences: every topic a checkbox, instant or digest, one button
        page.goto(signed(local_stack, LinkPurpose.PREFERENCES, address))
        expect(heading(page)).to_have_text("Email preferences")
        expect(page.get_by_role("checkbox", name="Harbour")).to_be_checked()
        expect(page.get_by_role("radio", name="Every article, as it is published")).to_be_checked()
        expect(page.get_by_role("button")).to_have_count(1)
        assert_laid_out(page, width, "the preferences page")
        page.get_by_role("radio", name="One weekly digest").check()
        page.get_by_role("checkbox", name="Council").uncheck()
        page.get_by_role("button", name="Save").click()
        expect(heading(page)).to_have_text("Preferences saved")
        expect(page.locator("#message")).to_have_text("Saved. You receive one weekly digest, about Harbour.")
        assert_laid_out(page, width, "the saved preferences page")
        page.get_by_role("checkbox", name="Council").check()
        page.get_by_role("radio", name="Every article, as it is published").check()
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#message")).to_have_text(
            "Saved. You receive every article as it is published, about Council and Harbour."
        )
        # A form that lost its choice of frequency: a 400 page with a way back
        page.evaluate("document.querySelectorAll('input[name=frequency]').forEach((r) => { r.checked = false; })")
        page.get_by_role("button", name="Save").click()
        expect(heading(page)).to_have_text("Choose how often")
        assert_laid_out(page, width, "the preferences error page")
        page.get_by_role("link", name="Back to your email preferences").click()
        expect(heading(page)).to_have_text("Email preferences")

        # Unsubscribe from the email sent for Harbour: that topic, or everything
        unsubscribe = signed(local_stack, LinkPurpose.UNSUBSCRIBE, address, {"d": harbour_delivery})
        page.goto(unsubscribe)
        expect(heading(page)).to_have_text("Unsubscribe")
        assert_laid_out(page, width, "the unsubscribe page")
        page.get_by_role("button", name="Stop emails about Harbour").click()
        expect(heading(page)).to_have_text("You are unsubscribed from Harbour")
        expect(page.get_by_text("You still receive emails about Council.")).to_be_visible()
        assert_laid_out(page, width, "the page after leaving a topic")
        page.get_by_role("button", name="Unsubscribe from everything").click()
        expect(heading(page)).to_have_text("You are unsubscribed")
        assert_laid_out(page, width, "the unsubscribed page")
        # The same link again says so, and asks nothing
        page.goto(unsubscribe)
        expect(heading(page)).to_have_text("You are unsubscribed")
        expect(page.get_by_text("You will not receive these emails any more.")).to_be_visible()
        expect(page.get_by_role("button")).to_have_count(0)

        # A broken link: a 400 page that offers a way on
        page.goto(tampered(unsubscribe))
        expect(heading(page)).to_have_text("This link does not work")
        expect(page.get_by_role("button", name="Subscribe again")).to_be_visible()
        expect(page.get_by_role("navigation", name="Where next").get_by_role("link")).not_to_have_count(0)
        assert_laid_out(page, width, "the broken link page")
    finally:
        context.close()
