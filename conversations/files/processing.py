"""What an uploaded file is, from its bytes, and the form it is stored in.

The type comes from the bytes, never from the name or the client's Content-Type: an
allowlist of PNG, JPEG, WebP, GIF, PDF and UTF-8 text (the name only tells Markdown
and CSV from plain text). Images are decoded and re-encoded with Pillow, which drops
every metadata chunk (EXIF, GPS, XMP, text chunks) and anything appended after the
image, and bounds the longest side (CONFAB_IMAGE_MAX_SIDE). The pixel count is read
from the header and checked before anything is decoded, so a 50,000 x 50,000 PNG of a
few kilobytes is refused without allocating its 7.5 GB of pixels.

Bytes that read as two types at once (a polyglot: an image or text that a PDF reader
or a browser would also open as something else) are refused, not repaired.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageTooLarge, InvalidFile, UnsupportedFileType

IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
)
PDF_SIGNATURE = b"%PDF-"
# What Pillow writes each accepted image format as (GIF: its first frame, as PNG).
REENCODED = {
    "image/png": ("PNG", "image/png", ".png"),
    "image/gif": ("PNG", "image/png", ".png"),
    "image/jpeg": ("JPEG", "image/jpeg", ".jpg"),
    "image/webp": ("WEBP", "image/webp", ".webp"),
}
TEXT_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".csv": "text/csv"}
# Signs of a second format inside a file: PDF readers look for %PDF- anywhere in the
# first kilobyte; browsers sniff markup; a ZIP's end record (read from the end of a
# file) makes an archive (JAR, DOCX) of whatever precedes it.
_PDF_ANYWHERE_IN = 1024
_MARKUP = re.compile(rb"<\s*(script|html|svg|iframe|object|embed|\?php)\b", re.IGNORECASE)
_ZIP_END_RECORD = b"PK\x05\x06"
_ZIP_END_SEARCH = 65_557  # the end record (22 bytes) and the longest comment after it
# Control characters a text file does not contain (tab, newline, CR, form feed are fine).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ProcessedFile:
    """A file as it is stored: its bytes, type, name and what the model reads of it."""

    data: bytes
    content_type: str
    name: str
    width: int | None = None
    height: int | None = None
    text: str = ""


def sniff(data: bytes, name: str) -> str:
    """The content type of `data` from its bytes (UnsupportedFileType if none fits)."""
    for signature, offset, content_type in IMAGE_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(PDF_SIGNATURE):
        return "application/pdf"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedFileType() from None
    if _CONTROL.search(text):
        raise UnsupportedFileType()
    return TEXT_TYPES.get(_extension(name), "text/plain")


def check_not_polyglot(data: bytes, content_type: str) -> None:
    """Refuse bytes that another reader would take for another format."""
    if content_type != "application/pdf" and PDF_SIGNATURE in data[:_PDF_ANYWHERE_IN]:
        raise UnsupportedFileType("The file reads as more than one type (it contains a PDF).")
    if _ZIP_END_RECORD in data[-_ZIP_END_SEARCH:]:
        raise UnsupportedFileType("The file reads as more than one type (it is a ZIP archive).")
    if content_type.startswith("image/") and _MARKUP.search(data):
        raise UnsupportedFileType("The file reads as more than one type (it contains markup).")


def process_upload(data: bytes, name: str) -> ProcessedFile:
    """Check, sniff and normalize an upload; raises a 4xx domain error when refused."""
    name = clean_name(name)
    if not data:
        raise InvalidFile("The file is empty.")
    content_type = sniff(data, name)
    check_not_polyglot(data, content_type)
    if content_type.startswith("image/"):
        return _reencode_image(data, name, content_type)
    if content_type == "application/pdf":
        return ProcessedFile(data, content_type, name, text=pdf_text(data))
    text = data.decode("utf-8")
    return ProcessedFile(data, content_type, name, text=bounded(text))


def _reencode_image(data: bytes, name: str, content_type: str) -> ProcessedFile:
    try:
        # Opening reads the header only: the size is known before any pixel is decoded.
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > settings.CONFAB_IMAGE_MAX_PIXELS:
                raise ImageTooLarge(
                    f"The image is {width} x {height} pixels; at most "
                    f"{settings.CONFAB_IMAGE_MAX_PIXELS} pixels are accepted."
                )
            if image.format not in {"PNG", "JPEG", "GIF", "WEBP"}:
                raise UnsupportedFileType()
            image.seek(0)  # an animation's first frame
            image.load()
            upright = ImageOps.exif_transpose(image)
            frame = upright if upright is not None else image
            frame = _with_supported_mode(frame)
            side = settings.CONFAB_IMAGE_MAX_SIDE
            if max(frame.size) > side:
                frame.thumbnail((side, side), Image.Resampling.LANCZOS)
            pil_format, stored_type, extension = REENCODED[content_type]
            if pil_format == "JPEG" and frame.mode not in ("RGB", "L"):
                frame = frame.convert("RGB")
            out = io.BytesIO()
            # No exif=, icc_profile=, pnginfo=: nothing of the original's metadata is kept.
            options = {"quality": 90} if pil_format in {"JPEG", "WEBP"} else {"optimize": True}
            frame.save(out, format=pil_format, **options)
            width, height = frame.size
    except (ImageTooLarge, UnsupportedFileType):
        raise
    except Image.DecompressionBombError:
        raise ImageTooLarge() from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise InvalidFile("The image could not be decoded.") from None
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return ProcessedFile(
        out.getvalue(), stored_type, f"{stem}{extension}", width=width, height=height
    )


def _with_supported_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("RGBA" if "A" in image.getbands() else "RGB")


def pdf_text(data: bytes) -> str:
    """The text of a PDF's pages, bounded (InvalidFile when it does not parse)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    limit = settings.CONFAB_FILE_TEXT_MAX_CHARS
    try:
        reader = PdfReader(io.BytesIO(data))
        parts: list[str] = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            parts.append(text)
            total += len(text)
            if total >= limit:
                break
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError):
        raise InvalidFile("The PDF could not be read.") from None
    return bounded("\n\n".join(parts))


def bounded(text: str) -> str:
    """`text` cut to CONFAB_FILE_TEXT_MAX_CHARS, saying so when it was cut."""
    limit = settings.CONFAB_FILE_TEXT_MAX_CHARS
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… cut: the file has {len(text)} characters]"


def clean_name(name: str) -> str:
    """A display name: no path, no control characters, at most 200 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).replace("\x00", "").strip() or "file"
    # Lone surrogates cannot be stored (PostgreSQL refuses them).
    name = name.encode("utf-8", "replace").decode("utf-8")
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:190] + dot + extension[:9]) if dot else name[:200]
    return name


def _extension(name: str) -> str:
    return ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
