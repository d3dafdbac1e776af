"""Uploads fuzzed with Hypothesis: random bytes, damaged and truncated images and PDFs,
hostile names. Every answer is a 201 with a file that is what it claims, or a 4xx with
one of the documented codes: never a 500, never a stored file that is not clean."""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from rest_framework.test import APIClient

from conversations.files.models import UserFile
from conversations.files.processing import process_upload
from tests.support import files as samples

pytestmark = pytest.mark.django_db

ALLOWED = {
    "image/png",
    "image/jpeg",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
}
REFUSALS = {
    (413, "FILE_TOO_LARGE"),
    (415, "UNSUPPORTED_FILE_TYPE"),
    (422, "INVALID_FILE"),
    (422, "IMAGE_TOO_LARGE"),
    (400, "VALIDATION_ERROR"),
}


def _webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (16, 16), (1, 2, 3, 128)).save(out, format="WEBP")
    return out.getvalue()


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (12, 12)).save(out, format="GIF")
    return out.getvalue()


SEEDS = [
    samples.png(),
    samples.jpeg_with_gps(),
    _webp(),
    _gif(),
    samples.pdf_with_text("hello"),
    samples.png_header_only(60_000, 60_000),
    b"plain text\n",
]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid file with some bytes changed, cut short, or with bytes appended."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=64))
    return bytes(data)


CONTENTS = st.one_of(st.binary(min_size=0, max_size=512), damaged(), st.sampled_from(SEEDS))
NAMES = st.text(min_size=0, max_size=300).filter(lambda name: "\x00" not in name)


def check_stored(file_id: int) -> None:
    file = UserFile.objects.get(pk=file_id)
    assert file.content_type in ALLOWED, file.content_type
    with default_storage.open(file.storage_name, "rb") as stored:
        data = stored.read()
    assert len(data) == file.size
    if file.content_type.startswith("image/"):
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert not image.getexif(), "metadata kept"
            assert (image.width, image.height) == (file.width, file.height)


def client_side_name(name: str) -> str:
    """Django's test client refuses to build an upload whose name has no last part ("",
    "/", "..", "a/."), before any request: such names are sent as "x"."""
    return name if os.path.basename(name) not in {"", ".", ".."} else "x"


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(data=CONTENTS, name=NAMES)
def test_fuzzed_uploads_are_stored_clean_or_refused_clearly(token, data, name):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        "/api/v1/files/",
        {"file": SimpleUploadedFile(client_side_name(name), data, content_type="image/png")},
        format="multipart",
    )
    if response.status_code == 201:
        body = response.json()
        check_stored(body["id"])
        assert len(body["name"]) <= 200
    else:
        assert (response.status_code, response.json()["code"]) in REFUSALS, response.content


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(data=CONTENTS, name=NAMES)
def test_processing_raises_only_domain_errors(data, name):
    """Without HTTP in between, for more cases: anything else would be a 500."""
    from core.errors import ApplicationError

    try:
        processed = process_upload(data, name)
    except ApplicationError as exc:
        assert 400 <= exc.status < 500
        return
    assert processed.content_type in ALLOWED
