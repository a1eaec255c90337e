"""A minimal HTTP/1.1 keep-alive client for the crash experiment: a few dozen connections
held open by this process, so the runner itself sees which of them a crash takes down."""

import socket
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: echolab\r\n\r\n"


def _read_response(conn: socket.socket) -> bytes:
    """One response, read up to the end of its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a full response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the middle of a body")
        body += chunk
    return head


def exchange(conn: socket.socket, request: bytes = REQUEST) -> bool:
    """Sends one request on an open connection; True when a 200 comes back."""
    try:
        conn.sendall(request)
        return _read_response(conn).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class KeepAliveClients:
    """`count` connections, each proven alive with one request; closed on exit."""

    def __init__(self, host: str, port: int, count: int, timeout_s: float = 5.0):
        self.connections: list[socket.socket] = []
        try:
            for _ in range(count):
                conn = socket.create_connection((host, port), timeout=timeout_s)
                self.connections.append(conn)
                if not exchange(conn):
                    raise RuntimeError(f"a keep-alive client got no 200 from {host}:{port}")
        except BaseException:
            self.close()
            raise

    def still_served(self) -> int:
        """How many of the connections still get an answer."""
        return sum(1 for conn in self.connections if exchange(conn))

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.connections.clear()

    def __enter__(self) -> "KeepAliveClients":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def send_crash(host: str, port: int, path: str = "/crash", timeout_s: float = 5.0) -> bool:
    """Sends GET /crash; True when the connection died without an answer, as it must when the
    worker serving it took a SIGSEGV."""
    with socket.create_connection((host, port), timeout=timeout_s) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: echolab\r\n\r\n".encode())
        try:
            return conn.recv(4096) == b""
        except OSError:
            return True


def serves(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True when a fresh connection gets a 200."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            return exchange(conn)
    except OSError:
        return False


def answer_time(host: str, port: int, path: str = "/", timeout_s: float = 1.0) -> float | None:
    """Seconds from a fresh connect to its 200 answer to one GET of `path`; None when no 200
    came within `timeout_s` (a connection refused, reset or left waiting)."""
    request = f"GET {path} HTTP/1.1\r\nHost: echolab\r\n\r\n".encode()
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            return time.monotonic() - started if exchange(conn, request) else None
    except OSError:
        return None
