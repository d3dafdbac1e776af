"""Local servers that receive what Confab sends out, checked as the real ones check it.

- `PushService`: a Web Push endpoint. It holds a browser's subscription keys (made
  here, as a browser makes them), verifies each request's VAPID header (RFC 8292: the
  JWT's ES256 signature against the key the header names, that key against the
  server's, the audience) and decrypts the aes128gcm payload with `http_ece`, as a
  browser's push client does.
- `WebhookReceiver`: verifies each request's Standard Webhooks signature with the
  `standardwebhooks` library; it can fail its first requests to show retries.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class VapidKeys:
    """A server's VAPID key pair, as `manage.py vapid_keys` prints it."""

    private: str  # base64url of the raw 32-byte private key (CONFAB_VAPID_PRIVATE_KEY)
    public: str  # base64url of the uncompressed public point (the browser's applicationServerKey)

    @classmethod
    def generate(cls) -> VapidKeys:
        vapid = Vapid02()
        vapid.generate_keys()
        number = vapid.private_key.private_numbers().private_value
        public = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return cls(private=b64url(number.to_bytes(32, "big")), public=b64url(public))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any = None
    status: int = 0


@dataclass
class _Server:
    answers: list[int] = field(default_factory=list)  # statuses to answer first, in order
    received: list[Received] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.answers.pop(0) if self.answers else 201

    @contextmanager
    def serving(self, check) -> Iterator[str]:
        """Serve on 127.0.0.1; `check(request)` returns the payload or raises."""
        server_state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status = server_state.next_status()
                try:
                    request.payload = check(request)
                except Exception as exc:
                    server_state.failures.append(repr(exc))
                    status = 400
                request.status = status
                with server_state.lock:
                    server_state.received.append(request)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


class PushService(_Server):
    """A push service endpoint and the subscription of one browser on it."""

    def __init__(self, vapid: VapidKeys, answers: list[int] | None = None) -> None:
        super().__init__(answers=list(answers or []))
        self.vapid = vapid
        self.browser_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        self.url = ""

    def subscription(self) -> dict[str, Any]:
        """What the browser's `PushSubscription.toJSON()` gives the app."""
        public = self.browser_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.url}/push/subscription-1",
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)},
        }

    def check(self, request: Received) -> Any:
        authorization = request.headers["authorization"]
        assert Vapid02.verify(authorization), "VAPID signature"
        parts = dict(item.split("=", 1) for item in authorization.split(" ", 1)[1].split(","))
        assert parts["k"].strip() == self.vapid.public, "signed by the server's VAPID key"
        claims = json.loads(b64url_decode(parts["t"].strip().split(".")[1]))
        assert claims["aud"] == self.url and claims["sub"].startswith("mailto:")
        assert request.headers["content-encoding"] == "aes128gcm"
        assert int(request.headers["ttl"]) > 0
        plain = http_ece.decrypt(
            request.body,
            private_key=self.browser_key,
            auth_secret=self.auth_secret,
            version="aes128gcm",
        )
        return json.loads(plain)

    @contextmanager
    def running(self) -> Iterator[PushService]:
        with self.serving(self.check) as url:
            self.url = url
            yield self


class WebhookReceiver(_Server):
    """An app's webhook endpoint: accepts only correctly signed requests."""

    def __init__(self, secret: str, answers: list[int] | None = None) -> None:
        super().__init__(answers=list(answers or []))
        self.secret = secret
        self.url = ""

    def check(self, request: Received) -> Any:
        try:
            return Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            raise AssertionError(f"bad signature: {exc}") from exc

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        with self.serving(self.check) as url:
            self.url = f"{url}/hooks/confab"
            yield self

    def delivered_ids(self) -> list[str]:
        """webhook-ids of the requests this receiver accepted (answered 2xx, verified)."""
        return [
            request.headers["webhook-id"]
            for request in self.received
            if request.payload is not None and 200 <= request.status < 300
        ]


def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()
