"""The emulated camera's WS-Discovery responder: answers a unicast Probe (SOAP-over-UDP) with
ProbeMatches carrying its device service address and ONVIF scopes; ignores what it cannot read.

Reuses the driver's codec (``devices.onvif.discovery``) so the two cannot disagree. Listens on
the emulator's host only and never joins a multicast group (DESIGN "Known pitfalls": tests and
technicians probe it by unicast, nothing leaves the machine). A thread with a blocking socket,
like the emulator's uvicorn thread, so it works without an event loop of the caller's.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import quote

from devices.onvif.discovery import (
    DEVICE,
    MAX_DATAGRAM_BYTES,
    NETWORK_VIDEO_TRANSMITTER,
    Discovered,
    build_probe_matches,
    matches_probe,
    parse_probe,
)
from devices.onvif.errors import BadReplyError
from firmware_sim.onvif.camera import Identity

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often the thread looks at the stop flag
DEFAULT_CITY = "Kota Pintar"


def discovery_scopes(identity: Identity, city: str = DEFAULT_CITY) -> tuple[str, ...]:
    """The camera's scopes (ONVIF Core §7.3.2.2), values percent-encoded; the same items as
    its GetScopes answer, plus the city."""
    base = "onvif://www.onvif.org"
    return (f"{base}/Profile/Streaming", f"{base}/type/ptz",
            f"{base}/type/Network_Video_Transmitter",
            f"{base}/hardware/{quote(identity.model)}", f"{base}/name/{quote(identity.model)}",
            f"{base}/location/country/indonesia", f"{base}/location/city/{quote(city)}")


class DiscoveryResponder:
    """Answers Probes on ``host:port`` (port 0: a free one, known after ``start``)."""

    def __init__(self, host: str, port: int, identity: Identity,
                 xaddrs: Callable[[], Sequence[str]], city: str = DEFAULT_CITY) -> None:
        self.host = host
        self.port = port
        # A stable endpoint reference per serial, as a real camera keeps one across reboots.
        self.endpoint_ref = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'kota-pintar-camera/' + identity.serial)}"
        self.types = (NETWORK_VIDEO_TRANSMITTER, DEVICE)
        self.scopes = discovery_scopes(identity, city)
        self._xaddrs = xaddrs
        self.probes_answered = 0
        self.garbage = 0
        self._instance_id = int(time.time())  # WS-Discovery AppSequence: new per start
        self._message_number = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> DiscoveryResponder:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                             socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.settimeout(POLL_S)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"onvif-discovery-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        self._sock, self._thread = None, None

    def answer(self, data: bytes) -> bytes | None:
        """The ProbeMatches for a datagram, or None (garbage, not a Probe, or no match)."""
        try:
            probe = parse_probe(data)
        except BadReplyError as exc:
            self.garbage += 1
            log.debug("discovery: ignored a datagram: %s", exc)
            return None
        if not matches_probe(probe, self.types, self.scopes):
            return None
        self._message_number += 1
        match = Discovered(self.endpoint_ref, tuple(self._xaddrs()), self.scopes, self.types)
        return build_probe_matches(f"urn:uuid:{uuid.uuid4()}", probe.message_id, [match],
                                   instance_id=self._instance_id,
                                   message_number=self._message_number)

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return  # closed under us by stop()
            reply = self.answer(data)
            if reply is None:
                continue
            try:
                sock.sendto(reply, addr)
                self.probes_answered += 1
            except OSError as exc:  # the prober went away: nothing to do but note it
                log.debug("discovery: could not answer %s: %s", addr, exc)
