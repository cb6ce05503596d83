"""The embedded MQTT broker (amqtt, MQTT 3.1.1) for the demo, technicians and tests.

Production points the same code at Mosquitto or EMQX instead; this module only starts and
stops amqtt bound to loopback, without its slow logging and $SYS plugins.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from pathlib import Path
from typing import Any

from controlroom.settings import BrokerSettings

log = logging.getLogger(__name__)


class BrokerError(Exception):
    """The embedded broker could not start."""


def broker_config(settings: BrokerSettings) -> dict[str, Any]:
    auth: dict[str, Any]
    if settings.password_file is not None:
        auth = {"amqtt.plugins.authentication.FileAuthPlugin": {
            "password_file": str(settings.password_file)}}
    else:
        auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{settings.host}:{settings.port}"}},
        "timeout_disconnect_delay": 0,
        "plugins": auth,
    }


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BrokerError(
                    f"port {host}:{port} is already in use; stop what holds it or set "
                    "[broker] port (KOTA_BROKER__PORT) and the mqtt urls to another port"
                ) from exc
            raise BrokerError(f"cannot bind {host}:{port}: {exc}") from exc


async def _shutdown(broker: Any, timeout_s: float = 2.0) -> None:
    """Stop amqtt so that its port is free again at once.

    amqtt 0.12's ``Broker.shutdown()`` sometimes hangs in a session's ``handler.stop()`` (seen
    when clients were mid-reconnect) before it closes its listeners, leaving the port bound.
    So the listening sockets are closed first (``_servers`` is private; the version is pinned)
    and the rest of the shutdown gets a deadline, after which its tasks are cancelled.
    """
    for server in broker._servers.values():
        await server.close_instance()
    task = asyncio.ensure_future(broker.shutdown())
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.warning("amqtt did not shut down within %.0f s; cancelling its sessions", timeout_s)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for pending in others:
            pending.cancel()
        await asyncio.gather(*others, return_exceptions=True)


class EmbeddedBroker:
    """amqtt in its own thread and event loop, so synchronous code can start and stop it."""

    def __init__(self, settings: BrokerSettings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self._settings.host}:{self._settings.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        if self._settings.password_file is not None and not Path(self._settings.password_file).exists():
            raise BrokerError(f"password file {self._settings.password_file} does not exist")
        _check_port_free(self._settings.host, self._settings.port)
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_async())
            except Exception as exc:  # noqa: BLE001 - handed to the starting thread, re-raised there
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(_shutdown(self._broker))
            loop.close()

        self._thread = threading.Thread(target=serve, name="kota-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s):
            raise BrokerError(f"broker did not start within {timeout_s:.0f} s")
        if failure:
            raise BrokerError(f"broker failed to start on {self.url}: {failure[0]}") from failure[0]
        log.info("MQTT broker (embedded amqtt, MQTT 3.1.1) listening on %s", self.url)

    async def _start_async(self) -> None:
        from amqtt.broker import Broker  # imported late: amqtt is slow to import

        self._broker = Broker(broker_config(self._settings))
        await self._broker.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        self._thread = None
        self._loop = None
        log.info("MQTT broker on %s stopped", self.url)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
