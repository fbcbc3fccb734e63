"""Uploaded files as their writers would notice: front matter, image addresses, CSV headers, event order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from newsdesk.dal.uploads import sequencer_key
from newsdesk.errors import UploadRejected
from newsdesk.models.articles import ArticleStatus
from newsdesk.models.subscribers import Frequency
from newsdesk.rendering import MEDIA_BASE_URL, media_url, render_markdown
from newsdesk.services.imports import Columns
from newsdesk.services.uploads import read_article_file, upload_kind
from tests.support import times
from tests.support.html_safety import executable_content

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "council-approves-budget.md"
BASE = "https://media.example.org"

NEXT_YEAR = times.now() + timedelta(days=365)


# ---------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("media/x.png", f"{BASE}/media/x.png"),
        ("../media/x.png", f"{BASE}/media/x.png"),
        ("./media/x.png", f"{BASE}/media/x.png"),
        ("../../media/2026/a%20b.png?w=600#top", f"{BASE}/media/2026/a%20b.png?w=600#top"),
        ("photo.png", f"{BASE}/photo.png"),
        ("https://cdn.example.org/x.png", "https://cdn.example.org/x.png"),
        ("//cdn.example.org/x.png", "//cdn.example.org/x.png"),
        ("/static/x.png", "/static/x.png"),
        ("data:image/png;base64,AAAA", "data:image/png;base64,AAAA"),
        ("", ""),
    ],
)
def test_relative_image_paths_resolve_under_the_media_base(src: str, expected: str) -> None:
    assert media_url(BASE + "/", src) == expected


def test_images_in_markdown_get_absolute_addresses_and_links_do_not() -> None:
    html = render_markdown(
        '![Chamber](../media/chamber.jpg "The vote") [report](media/report.pdf) <img src="media/raw.png">',
        env={MEDIA_BASE_URL: BASE},
    )

    assert f'<img src="{BASE}/media/chamber.jpg" alt="Chamber" title="The vote">' in html
    assert 'href="media/report.pdf"' in html  # only images are rewritten
    assert '<img src="media/raw.png">' in html  # raw HTML is not Markdown's image: left as written


def test_without_a_media_base_images_stay_as_written() -> None:
    assert '<img src="../media/chamber.jpg" alt="x">' in render_markdown("![x](../media/chamber.jpg)")


def test_a_rewritten_image_is_still_sanitized() -> None:
    html = render_markdown('![x](media/x.png "t") <img src="x.png" onerror="alert(1)">', env={MEDIA_BASE_URL: BASE})
    assert executable_content(html) == []


# ---------------------------------------------------------------------- article files


def test_the_example_file_reads_as_the_readme_says() -> None:
    upload = read_article_file(EXAMPLE.read_bytes(), default_author="Newsdesk")

    assert upload.request.title == "Council approves the 2027 budget"
    assert upload.request.author == "Ada Brennan"
    assert upload.request.slug == "council-approves-2027-budget"
    assert upload.request.tags == ["council", "budget"]
    assert upload.request.body.startswith("The council **approved**")
    assert upload.front.wanted_status is ArticleStatus.PUBLISHED


def test_only_a_title_is_needed() -> None:
    upload = read_article_file(b"---\ntitle: Short\n---\nText.", default_author="The Gazette")

    assert (upload.request.author, upload.request.slug, upload.request.tags) == ("The Gazette", None, [])
    assert upload.front.wanted_status is ArticleStatus.PUBLISHED


def test_a_byte_order_mark_and_windows_line_ends_are_fine() -> None:
    upload = read_article_file(b"\xef\xbb\xbf---\r\ntitle: Hello\r\n---\r\nText.\r\n", default_author="x")
    assert upload.request.title == "Hello"


def test_publish_at_alone_means_scheduled_and_keeps_its_instant() -> None:
    later = f"---\ntitle: Later\npublish_at: {times.at_offset(NEXT_YEAR, hours=1)}\n---\nx".encode()
    upload = read_article_file(later, default_author="x")

    assert upload.front.wanted_status is ArticleStatus.SCHEDULED
    assert upload.front.publish_at == NEXT_YEAR


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("---\ntitle: Café\n---\nText".encode("latin-1"), "not UTF-8"),
        (b"---\ntitle: [unclosed\n---\nText", "not valid YAML"),
        (b"---\nauthor: Ada\n---\nText", "title: Field required"),
        (b"No front matter at all.", "title: Field required"),
        (b"---\ntitle: x\n---\n", "body: String should have at least 1 character"),
        (b"---\ntitle: x\nlayout: post\n---\nText", "layout: Extra inputs are not permitted"),
        (b"---\ntitle: x\nslug: Not A Slug\n---\nText", "slug: String should match pattern"),
        (f"---\ntitle: x\npublish_at: {times.naive(NEXT_YEAR)}\n---\nText".encode(), "needs a UTC offset"),
        (b"---\ntitle: x\nstatus: scheduled\n---\nText", "status: scheduled needs publish_at"),
        (f"---\ntitle: x\nstatus: draft\npublish_at: {times.zulu(NEXT_YEAR)}\n---\nx".encode(), "publish_at goes with"),
        (b"---\ntitle: x\nstatus: live\n---\nText", "status: Input should be"),
    ],
    # Named by the reason: a value holding the time would give each xdist worker a different test id.
    ids=lambda value: value if isinstance(value, str) else "file",
)
def test_a_bad_file_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UploadRejected) as rejected:
        read_article_file(data, default_author="x")
    assert reason in rejected.value.reason


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("articles/story.md", "article"),
        ("articles/2026/11/My Story é.md", "article"),
        ("subscribers/export.csv", "subscribers"),
        ("subscribers/confirmed/export.csv", "subscribers"),
        ("media/photo.jpg", None),
        ("articles/notes.txt", None),
        ("story.md", None),
    ],
)
def test_the_bucket_layout_decides_what_a_file_is(key: str, kind: str | None) -> None:
    found = upload_kind(key)
    assert (found.value if found else None) == kind


# ---------------------------------------------------------------------- events and CSV


def test_sequencers_compare_after_padding() -> None:
    shorter, longer = sequencer_key("FF"), sequencer_key("0100")
    assert shorter is not None
    assert longer is not None
    assert shorter < longer
    assert sequencer_key("0066a1b2c3d4e5f601") == sequencer_key("66A1B2C3D4E5F601")
    assert sequencer_key("not hex") is None


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        (["Email Address", "First Name", "Last Name", "MEMBER_RATING"], ["A@Example.org", "Ada", "B", "2"],
         ("a@example.org", "Ada B")),
        (["email", "active_subscription", "created_at"], ["ada@example.org", "true", "2024-01-01"],
         ("ada@example.org", None)),
        (["id", "email", "name", "note"], ["1", "ada@example.org", "Ada", ""], ("ada@example.org", "Ada")),
    ],
    ids=["mailchimp", "substack", "ghost"],
)  # fmt: skip
def test_common_exports_are_understood(header: list[str], row: list[str], expected: tuple[str, str | None]) -> None:
    request = Columns.from_header(header).request(row)
    assert (request.email, request.name) == expected
    assert request.frequency is Frequency.INSTANT


def test_a_csv_without_an_email_column_is_rejected() -> None:
    with pytest.raises(UploadRejected, match="no email column"):
        Columns.from_header(["name", "address"])
