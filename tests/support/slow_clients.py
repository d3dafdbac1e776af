"""A client that sends a request head one line at a time and never finishes it."""

from __future__ import annotations

import socket
import time

# How long the client keeps trickling before the test gives up on the server.
PATIENCE = 15.0


def trickle(port: int, first: bytes = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n") -> bytes:
    """Send a request head one header line every 0.2 s, never finishing it, until the
    server closes the connection; what the server sent before closing."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(0.2)
        sock.sendall(first)
        received = b""
        deadline = time.monotonic() + PATIENCE
        line = 0
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                try:
                    sock.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                except OSError:
                    return received
                line += 1
                continue
            except OSError:
                return received
            if not chunk:
                return received
            received += chunk
        raise AssertionError(f"still open after {PATIENCE} s of trickling ({line} lines)")
