"""A real MCP server (the `mcp` package's FastMCP, streamable HTTP) for the MCP tool tests.

    python -m tests.support.mcp_server --port N

Tools: `lookup_word` (a tiny dictionary), `add`, and `echo_header` (what the client
sent in a request header, to check headers from the environment arrive).
"""

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# No `from __future__ import annotations` here: FastMCP reads the tools' annotations.
from mcp.server.fastmcp import Context, FastMCP

ROOT = Path(__file__).resolve().parents[2]
DICTIONARY = {"사과": "apple", "咖啡": "coffee", "tea": "차"}


def build(port: int) -> FastMCP:
    server = FastMCP(
        "dictionary", host="127.0.0.1", port=port, stateless_http=True, json_response=True
    )

    @server.tool()
    def lookup_word(word: str) -> str:
        """Translate a word between Korean, Chinese and English."""
        if word not in DICTIONARY:
            raise ValueError(f"{word!r} is not in the dictionary.")
        return f"{word}: {DICTIONARY[word]}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo_header(name: str, ctx: Context) -> str:
        """The value of a request header."""
        return ctx.request_context.request.headers.get(name, "")

    return server


@contextmanager
def running_mcp_server(port: int) -> Iterator[str]:
    """The server in a subprocess on `port`; yields its MCP endpoint URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mcp_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    build(parser.parse_args().port).run(transport="streamable-http")
