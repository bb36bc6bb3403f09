"""Serving the sandbox: uvicorn on loopback, HTTP and HTTPS, in a background thread.

``SandboxServer`` is what tests, benchmarks, ``clghub demo`` and
``clghub sandbox serve`` use::

    with SandboxServer(SandboxOptions(accounts=50, as_of=date(2025, 6, 30))) as sandbox:
        httpx.get(sandbox.http_url + "/_sandbox/health")
        requests.get(sandbox.https_url + "/_sandbox/health", verify=sandbox.ca_path)

It generates the data (or reuses a state directory's), makes the local CA,
binds both ports (free ones unless given), runs one uvicorn server per port
in one event loop on its own thread, and returns once both accept
connections. Binding anything but loopback exposes an unauthenticated
emulator with fixed credentials to the network: the default is 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import tempfile
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from clghub.sandbox.app import create_app
from clghub.sandbox.config_out import SandboxEndpoints, write_config
from clghub.sandbox.generator import GenerationSummary, Progress, ensure_data
from clghub.sandbox.state import SandboxOptions, SandboxState
from clghub.sandbox.tls import TlsFiles, ensure_tls

__all__ = ["SandboxServer", "SandboxServerError"]

_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0


class SandboxServerError(RuntimeError):
    """The sandbox could not start (a port in use, a broken state directory)."""


class _DropFilter(logging.Filter):
    """Keeps the log quiet about connections the fault injector cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


_DROP_FILTER = _DropFilter()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections
    # only when the protocol says TCP; without it every response stalls 40 ms
    # (Nagle's algorithm against the client's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SandboxServerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


class SandboxServer:
    def __init__(
        self,
        options: SandboxOptions,
        *,
        host: str = "127.0.0.1",
        http_port: int = 0,
        https_port: int = 0,
        progress: Progress | None = None,
    ) -> None:
        self.options = options
        self.host = host
        self.http_port = http_port
        self.https_port = https_port
        self.progress = progress
        self.summary: GenerationSummary | None = None
        self._state: SandboxState | None = None
        self._tls: TlsFiles | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    # -- what tests use ---------------------------------------------------------

    @property
    def state(self) -> SandboxState:
        if self._state is None:
            raise SandboxServerError("the sandbox is not running")
        return self._state

    @property
    def http_url(self) -> str:
        return _url("http", self.host, self.http_port)

    @property
    def https_url(self) -> str:
        return _url("https", self.host, self.https_port)

    @property
    def ca_path(self) -> Path:
        if self._tls is None:
            raise SandboxServerError("the sandbox is not running")
        return self._tls.ca_cert

    @property
    def directory(self) -> Path:
        """Where the CA (and with ``state_dir``, the data) lives."""
        if self.options.state_dir is not None:
            return self.options.state_dir
        if self._temp is None:
            raise SandboxServerError("the sandbox is not running")
        return Path(self._temp.name)

    def endpoints(self) -> SandboxEndpoints:
        as_of = self.options.as_of
        return SandboxEndpoints(
            http_url=self.http_url,
            https_url=self.https_url,
            ca_path=self.ca_path,
            as_of=as_of.isoformat() if as_of else None,
        )

    def write_config(self, path: Path) -> tuple[Path, Path]:
        """A clghub config pointing at this sandbox, and its secrets file (see config_out)."""
        return write_config(path, self.endpoints())

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is not None:
            raise SandboxServerError("the sandbox is already running")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if self.options.state_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="clghub-sandbox-")
        self._state = SandboxState(self.options)
        self.summary = ensure_data(self._state, self.progress)
        self._tls = ensure_tls(self.directory)
        app = create_app(self._state)
        http_socket = _bind(self.host, self.http_port)
        https_socket = _bind(self.host, self.https_port)
        self.http_port = http_socket.getsockname()[1]
        self.https_port = https_socket.getsockname()[1]
        logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)
        self._servers = [
            uvicorn.Server(self._config(app, self.http_port, None)),
            uvicorn.Server(self._config(app, self.https_port, self._tls)),
        ]
        sockets = [http_socket, https_socket]
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name="clghub-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _READY_TIMEOUT
        while not all(server.started for server in self._servers):
            if self._failure is not None or not self._thread.is_alive():
                raise SandboxServerError(
                    f"the sandbox server stopped while starting: {self._failure!r}"
                )
            if time.monotonic() > deadline:
                raise SandboxServerError("the sandbox server did not start in time")
            time.sleep(0.01)

    def _config(self, app: Starlette, port: int, tls: TlsFiles | None) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=self.host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=3,
            timeout_keep_alive=30,
            ssl_certfile=str(tls.server_cert) if tls else None,
            ssl_keyfile=str(tls.server_key) if tls else None,
        )

    def _run(self, sockets: list[socket.socket]) -> None:
        async def serve() -> None:
            await asyncio.gather(
                *(
                    server.serve(sockets=[sock])
                    for server, sock in zip(self._servers, sockets, strict=True)
                )
            )
            # A request still in flight at shutdown (a stalled fault, a client
            # gone mid-response) leaves its transport open; close it here
            # rather than leave it to the garbage collector.
            for server in self._servers:
                for connection in list(server.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    if transport is not None and not transport.is_closing():
                        transport.abort()
            # Sockets uvicorn never saw as connections (a TLS handshake the client
            # gave up on) are only known to the event loop's transport table.
            loop = asyncio.get_running_loop()
            for transport in list(getattr(loop, "_transports", {}).values()):
                if transport is not None and not transport.is_closing():
                    transport.abort()
            await asyncio.sleep(0)
            await asyncio.sleep(0)

        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the starting thread
            self._failure = exc
        finally:
            for sock in sockets:
                sock.close()

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set or the server thread ends (for the CLI)."""
        while not stop.is_set():
            if self._thread is None or not self._thread.is_alive():
                if self._failure is not None:
                    raise SandboxServerError(f"the sandbox server failed: {self._failure!r}")
                return
            stop.wait(0.2)

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                for server in self._servers:
                    server.force_exit = True
                self._thread.join(_STOP_TIMEOUT)
            self._thread = None
            # uvicorn can leave the transport of a connection the peer dropped
            # mid-request (TLS connections cut by a client's timeout, mostly)
            # to the garbage collector. Finalize them now, while this server
            # is the one stopping, instead of as noise in whatever runs next.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
        self._servers = []
        if self._state is not None:
            self._state.close()
            self._state = None
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None
