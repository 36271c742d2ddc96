"""Signature sniffing: decide from the first bytes what an upload is, whatever its name says.

Only two families are ever handed to FFmpeg (ISO-BMFF and Matroska/WebM). Everything else is
refused here with the most useful code, so playlists and scripts never reach a demuxer that
could follow the references inside them.
"""

from __future__ import annotations

from enum import StrEnum

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError

SNIFF_BYTES = 4096


class Family(StrEnum):
    """The container families we open; each maps to exactly one forced FFmpeg demuxer."""

    ISOBMFF = "mov"
    MATROSKA = "matroska"


# First box types an ISO-BMFF / QuickTime file may start with.
_ISO_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
# ftyp major brands of still images / image sequences (HEIF, AVIF, JPEG 2000, camera raw).
IMAGE_BRANDS = frozenset(
    {
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"mif2", b"msf1", b"miaf",
        b"avif", b"avis", b"avci", b"jpeg", b"jpgs", b"jp2 ", b"jpx ", b"crx ", b"vvic",
    }
)  # fmt: skip

_IMAGE_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"8BPS", "PSD"),
    (0, b"qoif", "QOI"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (0, b"\x76\x2f\x31\x01", "OpenEXR"),
    (0, b"\x00\x00\x01\x00", "ICO"),
)

_OTHER_CONTAINERS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"FLV\x01", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "MP3"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x00\x00\x01\xb3", "MPEG video"),
    (0, b".RMF", "RealMedia"),
    (0, b"#!AMR", "AMR"),
    (0, b"FORM", "AIFF"),
    (0, b"DHAV", "DHAV"),
    (0, b"\x1a\x45\xdf\xa3", "EBML"),  # never reached: Matroska is matched first
)

_PLAYLIST_MARKERS = (
    b"#extm3u",
    b"#ext-x-",
    b"#extinf",
    b"ffconcat",
    b"[playlist]",
    b"<mpd",
    b"<smil",
    b"<asx",
    b"<playlist",
    b";ffmetadata",
    b"file '",
    b"file:",
    b"concat:",
    b"subfile,",
)
_MARKUP_PREFIXES = (b"<?xml", b"<!doctype", b"<html", b"<svg", b"<!--", b"<")


def sniff(head: bytes) -> Family:
    """Classify ``head`` (the first bytes of the upload); refuse anything but ISO-BMFF or Matroska."""
    if _is_iso_bmff(head):
        _refuse_image_brand(head)
        return Family.ISOBMFF
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return Family.MATROSKA
    for offset, magic, name in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            raise MediaRefusedError(ReasonCode.IMAGE_NOT_VIDEO, f"the file is a {name} image, not a video")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise MediaRefusedError(ReasonCode.IMAGE_NOT_VIDEO, "the file is a WebP image, not a video")
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00":
        raise MediaRefusedError(ReasonCode.IMAGE_NOT_VIDEO, "the file is a BMP image, not a video")
    container = _other_container(head)
    if container:
        raise MediaRefusedError(
            ReasonCode.UNSUPPORTED_CONTAINER, f"{container} files are not accepted; upload MP4, MOV or WebM"
        )
    _refuse_text(head)
    raise MediaRefusedError(ReasonCode.UNRECOGNISED_FORMAT, "not an MP4/MOV or Matroska/WebM file")


def _is_iso_bmff(head: bytes) -> bool:
    if len(head) < 8 or head[4:8] not in _ISO_FIRST_BOXES:
        return False
    size = int.from_bytes(head[:4], "big")
    return size in (0, 1) or size >= 8


def _refuse_image_brand(head: bytes) -> None:
    if head[4:8] == b"ftyp" and head[8:12] in IMAGE_BRANDS:
        brand = head[8:12].decode("latin-1").strip()
        raise MediaRefusedError(
            ReasonCode.IMAGE_NOT_VIDEO, f"the file is a still image ({brand}), not a video"
        )


def _other_container(head: bytes) -> str | None:
    if head[:4] == b"RIFF":
        return {b"AVI ": "AVI", b"WAVE": "WAV"}.get(head[8:12], "RIFF")
    for offset, magic, name in _OTHER_CONTAINERS:
        if head[offset : offset + len(magic)] == magic:
            return name
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG-TS"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MPEG audio/ADTS"
    return None


def _refuse_text(head: bytes) -> None:
    """Playlists and scripts get their own code: they are the SSRF / local-file-read attack class."""
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(b"#!") or any(marker in lowered for marker in _PLAYLIST_MARKERS):
        raise MediaRefusedError(
            ReasonCode.PLAYLIST_OR_SCRIPT, "the file is a playlist or script, not a video"
        )
    if lowered.startswith(_MARKUP_PREFIXES):
        if b"<svg" in lowered:
            raise MediaRefusedError(ReasonCode.IMAGE_NOT_VIDEO, "the file is an SVG image, not a video")
        raise MediaRefusedError(ReasonCode.UNRECOGNISED_FORMAT, "the file is a markup document, not a video")
    if _looks_like_text(lowered):
        raise MediaRefusedError(ReasonCode.UNRECOGNISED_FORMAT, "the file is text, not a video")


def _looks_like_text(data: bytes) -> bool:
    if not data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(data) - 4:  # allow a code point cut at the sniff boundary
            return False
    return all(byte >= 0x20 or byte in b"\t\r\n\f" for byte in data)
