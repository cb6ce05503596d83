"""Where a camera's frames come from: an MJPEG stream over HTTP, an RTSP stream, or snapshots.

Owns the reading of frames (blocking, in the caller's thread) and the pure multipart parser
that cuts an MJPEG byte stream into JPEG pictures. It must not analyse frames (``detectors``
does) nor talk ONVIF (the driver does); a source raises ``SourceError`` for anything that
ends the stream, so the caller reconnects with back-off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import cv2
import httpx
import numpy as np

MAX_PART_BYTES = 4 * 1024 * 1024  # a JPEG bigger than this is no camera frame: the stream is garbled
MAX_HEADER_BYTES = 4096


class SourceError(Exception):
    """The stream failed or ended; the text says what to check."""


class MultipartError(SourceError):
    """The bytes are not a multipart JPEG stream."""


class FrameSource(Protocol):
    def frames(self) -> Iterator[np.ndarray]:
        """BGR frames until the stream ends (SourceError) or the caller stops iterating."""
        ...

    def close(self) -> None: ...


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """A BGR frame from JPEG bytes, or MultipartError for bytes that are no picture."""
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) if jpeg else None
    if frame is None:
        raise MultipartError(f"a part of {len(jpeg)} bytes is not a JPEG picture")
    return frame


_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/x-mixed-replace`` content type."""
    if not content_type.lower().startswith("multipart/"):
        raise MultipartError(f"expected a multipart MJPEG stream, got {content_type or 'no type'!r}")
    match = _BOUNDARY_RE.search(content_type)
    if match is None:
        raise MultipartError(f"no boundary in {content_type!r}")
    boundary = match.group(1).strip()
    return (boundary if boundary.startswith("--") else "--" + boundary).encode()


class MultipartParser:
    """Cuts a multipart/x-mixed-replace byte stream into its parts' bodies (pure).

    Parts are found by their ``Content-Length`` when given, else by the next boundary. Garbage
    between parts is skipped; a part or header beyond the limits raises MultipartError.
    """

    def __init__(self, boundary: bytes) -> None:
        self._boundary = boundary
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            part = self._next()
            if part is None:
                break
            out.append(part)
        if len(self._buf) > MAX_PART_BYTES + MAX_HEADER_BYTES:
            raise MultipartError(f"no complete part within {len(self._buf)} bytes")
        return out

    def _next(self) -> bytes | None:
        buf = self._buf
        start = buf.find(self._boundary)
        if start < 0:
            # keep a tail that may hold the start of a boundary
            if len(buf) > len(self._boundary):
                del buf[:len(buf) - len(self._boundary)]
            return None
        head_end = buf.find(b"\r\n\r\n", start)
        if head_end < 0:
            if len(buf) - start > MAX_HEADER_BYTES:
                raise MultipartError("a part's header is longer than 4 KiB")
            return None
        header = bytes(buf[start + len(self._boundary):head_end]).decode("latin-1")
        body_start = head_end + 4
        length = _content_length(header)
        if length is not None:
            if length > MAX_PART_BYTES:
                raise MultipartError(f"a part of {length} bytes exceeds {MAX_PART_BYTES}")
            if len(buf) < body_start + length:
                return None
            body = bytes(buf[body_start:body_start + length])
            del buf[:body_start + length]
            return body
        end = buf.find(self._boundary, body_start)
        if end < 0:
            if len(buf) - body_start > MAX_PART_BYTES:
                raise MultipartError(f"a part exceeds {MAX_PART_BYTES} bytes")
            return None
        body = bytes(buf[body_start:end]).rstrip(b"\r\n")
        del buf[:end]
        return body


def _content_length(header: str) -> int | None:
    for line in header.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise MultipartError(f"bad Content-Length {value.strip()!r}") from None
            if length < 0:
                raise MultipartError(f"bad Content-Length {length}")
            return length
    return None


class MjpegSource:
    """An MJPEG stream over HTTP(S), with HTTP digest (or basic) auth."""

    def __init__(self, url: str, user: str, password: str, timeout_s: float) -> None:
        self.url = url
        self._client = httpx.Client(auth=httpx.DigestAuth(user, password),
                                    timeout=httpx.Timeout(timeout_s), follow_redirects=False)
        self._basic = httpx.BasicAuth(user, password)

    def frames(self) -> Iterator[np.ndarray]:
        try:
            yield from self._frames(None)
        except _TryBasic:
            yield from self._frames(self._basic)

    def _frames(self, auth: httpx.Auth | None) -> Iterator[np.ndarray]:
        kwargs = {"auth": auth} if auth is not None else {}
        try:
            with self._client.stream("GET", self.url, **kwargs) as reply:
                if reply.status_code == 401:
                    challenge = reply.headers.get("www-authenticate", "").lower()
                    if auth is None and challenge.startswith("basic"):
                        raise _TryBasic
                    raise SourceError(f"the camera refused the user and password for {self.url} "
                                      "(HTTP 401): check user and password in the camera settings")
                if reply.status_code != 200:
                    raise SourceError(f"{self.url} answered HTTP {reply.status_code}")
                parser = MultipartParser(boundary_of(reply.headers.get("content-type", "")))
                for chunk in reply.iter_raw():  # as it arrives: a size would batch frames
                    for jpeg in parser.feed(chunk):
                        yield decode_jpeg(jpeg)
        except httpx.HTTPError as exc:
            raise SourceError(f"video stream {self.url}: {type(exc).__name__}: {exc}") from exc
        raise SourceError(f"video stream {self.url} ended")

    def close(self) -> None:
        self._client.close()


class _TryBasic(Exception):
    pass


class RtspSource:
    """An RTSP (or any URL FFmpeg reads) stream through OpenCV; credentials go into the URL."""

    def __init__(self, url: str, user: str, password: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if user and "@" not in parts.netloc:
            netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
            url = urlunsplit(parts._replace(netloc=netloc))
        self._url = url
        self.url = urlunsplit(parts)  # without credentials, for logs
        self._timeout_ms = int(timeout_s * 1000)
        self._cap: cv2.VideoCapture | None = None

    def frames(self) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout_ms,
                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout_ms])
        self._cap = cap
        if not cap.isOpened():
            raise SourceError(f"cannot open the video stream {self.url}: check the camera's "
                              "stream settings, or set video_url / video = \"snapshot\"")
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                raise SourceError(f"video stream {self.url} stopped delivering frames")
            yield frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


class SnapshotSource:
    """Frames by fetching a snapshot again and again, at most ``fps`` per second."""

    def __init__(self, fetch: Callable[[], bytes], fps: float, stop: Callable[[], bool]) -> None:
        self._fetch = fetch
        self._period_s = 1.0 / fps
        self._stop = stop

    def frames(self) -> Iterator[np.ndarray]:
        next_at = time.monotonic()
        while not self._stop():
            yield decode_jpeg(self._fetch())
            next_at += self._period_s
            wait = next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                next_at = time.monotonic()

    def close(self) -> None:
        pass


def open_source(url: str, user: str, password: str, timeout_s: float) -> FrameSource:
    """A source for a stream URL: http(s) → MJPEG, anything else → OpenCV/FFmpeg."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return MjpegSource(url, user, password, timeout_s)
    if scheme in ("rtsp", "rtsps", "rtmp", "udp", "file"):
        return RtspSource(url, user, password, timeout_s)
    raise SourceError(f"cannot read video from {url!r}: use an http(s) MJPEG or an rtsp URL")
