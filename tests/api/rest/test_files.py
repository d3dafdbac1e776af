"""`/api/v1/files/`: uploads checked from their bytes, images re-encoded without their
metadata, limits with clear codes, bytes only through the owner or a signed URL."""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from conversations.files import links
from conversations.files.models import UserFile
from tests.support import files as samples
from tests.support.rest import assert_error, comparable

pytestmark = pytest.mark.django_db

FIELDS = {"id", "name", "content_type", "size", "sha256", "width", "height", "url", "created_at"}


def upload(client, data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return client.post(
        "/api/v1/files/",
        {"file": SimpleUploadedFile(name, data, content_type=content_type)},
        format="multipart",
    )


def stored_bytes(file_id: int) -> bytes:
    file = UserFile.objects.get(pk=file_id)
    with default_storage.open(file.storage_name, "rb") as stored:
        return stored.read()


def test_upload_returns_the_documented_file_object(api, user):
    response = upload(api, samples.png(64, 48))

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert body["content_type"] == "image/png" and (body["width"], body["height"]) == (64, 48)
    data = stored_bytes(body["id"])
    assert body["size"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["url"].startswith("/api/v1/files/signed/")
    assert UserFile.objects.get(pk=body["id"]).user_id == user.pk
    # Not a public media path.
    assert (
        not body["url"].startswith("/media") and "files/" not in body["url"].split("signed")[0][:-1]
    )


def test_type_comes_from_the_bytes_not_the_name(api):
    lying = upload(api, samples.png(), name="notes.txt", content_type="text/plain")
    assert lying.status_code == 201 and lying.json()["content_type"] == "image/png"

    exe = upload(api, b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)), name="cat.png")
    assert_error(exe, 415, "UNSUPPORTED_FILE_TYPE")


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("notes.txt", "plain text, ünïcode".encode(), "text/plain"),
        ("README.md", b"# Title\n\n* item\n", "text/markdown"),
        ("table.csv", b"a,b\n1,2\n", "text/csv"),
        ("doc.pdf", samples.pdf_with_text("Quarterly revenue rose"), "application/pdf"),
        ("photo.jpg", samples.jpeg_with_gps(), "image/jpeg"),
    ],
)
def test_the_allowlist(api, name, data, content_type):
    response = upload(api, data, name=name, content_type="application/octet-stream")
    assert response.status_code == 201, response.content
    assert response.json()["content_type"] == content_type


def test_pdf_text_is_extracted_once_at_upload(api):
    body = upload(api, samples.pdf_with_text("Quarterly revenue rose"), name="q.pdf").json()
    assert "Quarterly revenue rose" in UserFile.objects.get(pk=body["id"]).text


def test_images_lose_exif_and_gps(api):
    original = samples.jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # it had GPS

    body = upload(api, original, name="photo.jpg").json()

    data = stored_bytes(body["id"])
    assert b"SpyCam" not in data and b"Exif" not in data
    assert not Image.open(io.BytesIO(data)).getexif()


def test_longest_side_is_bounded(api, settings):
    settings.CONFAB_IMAGE_MAX_SIDE = 100
    body = upload(api, samples.png(400, 200)).json()
    assert (body["width"], body["height"]) == (100, 50)
    assert Image.open(io.BytesIO(stored_bytes(body["id"]))).size == (100, 50)


def test_gif_is_stored_as_its_first_frame_in_png(api):
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, format="GIF")
    body = upload(api, out.getvalue(), name="anim.gif").json()
    assert body["content_type"] == "image/png" and body["name"] == "anim.png"


def test_a_50000_by_50000_png_is_refused_before_decoding(api):
    bomb = samples.png_header_only(50_000, 50_000)
    assert len(bomb) < 2_000
    assert_error(upload(api, bomb), 422, "IMAGE_TOO_LARGE")
    assert not UserFile.objects.exists()


@pytest.mark.parametrize(
    "polyglot", [samples.gif_zip_polyglot, samples.png_pdf_polyglot, samples.png_html_polyglot]
)
def test_polyglots_are_refused(api, polyglot):
    data = polyglot()
    Image.open(io.BytesIO(data)).load()  # a valid image all the same
    assert_error(upload(api, data, name="cat.gif"), 415, "UNSUPPORTED_FILE_TYPE")


def test_broken_image_is_invalid(api):
    assert_error(upload(api, samples.png()[:60]), 422, "INVALID_FILE")


def test_size_limit(api, settings):
    settings.CONFAB_FILE_MAX_BYTES = 1_000
    assert_error(upload(api, b"x" * 1_001, name="big.txt"), 413, "FILE_TOO_LARGE")
    assert upload(api, b"x" * 1_000, name="ok.txt").status_code == 201


def test_upload_body_limit_is_its_own(api, settings):
    """A file larger than CONFAB_MAX_BODY_BYTES is fine on the upload path only."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    assert upload(api, b"y" * 5_000, name="ok.txt").status_code == 201
    settings.CONFAB_BODY_LIMITS = {"/api/v1/files/": 2_000}
    assert_error(upload(api, b"y" * 5_000, name="big.txt"), 413, "FILE_TOO_LARGE")


def test_files_per_user_limit(api, settings):
    settings.CONFAB_FILES_PER_USER = 2
    assert upload(api, b"1", name="a.txt").status_code == 201
    assert upload(api, b"2", name="b.txt").status_code == 201
    assert_error(upload(api, b"3", name="c.txt"), 409, "FILE_LIMIT_REACHED")


def test_exactly_one_file_field(api):
    assert_error(api.post("/api/v1/files/", {}, format="multipart"), 400, "VALIDATION_ERROR")
    assert_error(
        api.post("/api/v1/files/", {"file": "text"}, format="multipart"), 400, "VALIDATION_ERROR"
    )


def test_binary_with_control_bytes_is_not_text(api):
    assert_error(upload(api, b"abc\x00def", name="a.txt"), 415, "UNSUPPORTED_FILE_TYPE")


def test_detail_list_and_delete(api, django_capture_on_commit_callbacks):
    body = upload(api, b"hello", name="a.txt").json()
    assert api.get(f"/api/v1/files/{body['id']}/").json()["sha256"] == body["sha256"]
    assert [f["id"] for f in api.get("/api/v1/files/").json()["results"]] == [body["id"]]
    storage_name = UserFile.objects.get(pk=body["id"]).storage_name

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/files/{body['id']}/").status_code == 204

    assert_error(api.get(f"/api/v1/files/{body['id']}/"), 404, "NOT_FOUND")
    assert not default_storage.exists(storage_name)


def test_content_for_the_owner_only(api, other_api, anon):
    body = upload(api, b"secret notes", name="a.txt").json()
    content = api.get(f"/api/v1/files/{body['id']}/content/")
    assert content.status_code == 200
    assert b"".join(content.streaming_content) == b"secret notes"
    assert content["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in content["Content-Security-Policy"]
    assert content["Content-Disposition"].startswith("attachment")

    theirs = other_api.get(f"/api/v1/files/{body['id']}/content/")
    missing = other_api.get("/api/v1/files/999999999/content/")
    assert_error(theirs, 404, "NOT_FOUND")
    assert comparable(theirs) == comparable(missing)
    assert_error(other_api.delete(f"/api/v1/files/{body['id']}/"), 404, "NOT_FOUND")
    assert_error(anon.get(f"/api/v1/files/{body['id']}/content/"), 401, "NOT_AUTHENTICATED")


def test_signed_url_serves_without_a_token_until_it_expires(api, anon, settings):
    body = upload(api, samples.png(), name="p.png").json()

    served = anon.get(body["url"])
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == stored_bytes(body["id"])

    token = body["url"].removeprefix(links.SIGNED_PATH).rstrip("/")
    later = time.time() + settings.CONFAB_FILE_URL_TTL * 2
    assert links.file_from_token(token, now=later) is None
    assert links.file_from_token(token) == body["id"]
    expired = links.signed_url(body["id"], now=time.time() - settings.CONFAB_FILE_URL_TTL * 2)
    assert_error(anon.get(expired), 404, "NOT_FOUND")


def test_forged_or_altered_signed_urls_are_not_found(api, anon):
    body = upload(api, b"a", name="a.txt").json()
    other = upload(api, b"b", name="b.txt").json()
    token = body["url"].removeprefix(links.SIGNED_PATH).rstrip("/")
    signature = token.rpartition(":")[2]
    swapped = links.signed_url(other["id"]).removeprefix(links.SIGNED_PATH).rstrip("/")
    forged = swapped.rpartition(":")[0] + ":" + signature
    for bad in (forged, token[:-2] + "xx", "not-a-token", "a" * 500):
        assert_error(anon.get(f"{links.SIGNED_PATH}{bad}/"), 404, "NOT_FOUND")


def test_a_deleted_files_signed_url_is_not_found(api, anon):
    body = upload(api, b"a", name="a.txt").json()
    api.delete(f"/api/v1/files/{body['id']}/")
    assert_error(anon.get(body["url"]), 404, "NOT_FOUND")


def test_names_are_cleaned(api):
    body = upload(api, b"x", name="../../etc/pass\x01wd.txt").json()
    assert body["name"] == "passwd.txt"


def test_a_files_url_is_stable_within_its_window(api, settings):
    """Pages and events built moments apart give the same URL (and browsers cache it)."""
    body = upload(api, b"a", name="a.txt").json()
    window = settings.CONFAB_FILE_URL_TTL // 4
    start = (time.time() // window) * window + 1
    assert links.signed_url(body["id"], now=start) == links.signed_url(
        body["id"], now=start + window - 2
    )
    assert links.signed_url(body["id"], now=start) != links.signed_url(
        body["id"], now=start + window
    )


def test_a_deleted_users_file_bytes_go_too(api, user, django_capture_on_commit_callbacks):
    body = upload(api, b"bye", name="a.txt").json()
    storage_name = UserFile.objects.get(pk=body["id"]).storage_name
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert not default_storage.exists(storage_name)


def test_a_form_field_with_a_nul_character_is_refused(api):
    """Multipart is parsed by the upload parser (not by the text middleware, which would
    bypass its limits and handlers): it refuses unsafe text in fields itself. (Django
    already drops NUL characters from file names.)"""
    response = api.post(
        "/api/v1/files/",
        {"file": SimpleUploadedFile("a.txt", b"hello"), "note": "a\x00b"},
        format="multipart",
    )
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["fields"]["note"][0]["code"] == "invalid_characters"
