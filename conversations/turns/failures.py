"""Map what can go wrong in a turn to a stable error code and a safe message.

Raw exception text never reaches a client: it may carry URLs, keys or the
prompt. The full exception goes to the server log instead.

The exceptions are not always the ones the OpenAI client documents at the
top: langchain-openai re-raises them as its own subclasses
(`OpenAIConnectionError(...) from APIConnectionError(...) from <transport
error>`), and openai>=3 speaks HTTP through `httpx2`, a fork of httpx with its
own exception classes. So the transport error that tells a cut stream from an
unreachable server is found by walking the whole cause chain, for both httpx
flavours.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import ollama
import openai
import requests

try:
    import httpx2
except ImportError:  # pragma: no cover - openai<3 uses httpx itself
    httpx2 = httpx

PROVIDER_TIMEOUT = ("provider_timeout", "The model provider did not answer in time.")
STREAM_INTERRUPTED = ("provider_stream_interrupted", "The model's reply stream was cut off.")

# A response body that ended early or broke while being read.
_CUT_STREAM: tuple[type[BaseException], ...] = (
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.StreamError,
    httpx2.RemoteProtocolError,
    httpx2.ReadError,
    httpx2.StreamError,
    # Google's REST transport (langchain-google-genai) reads through requests.
    requests.exceptions.ChunkedEncodingError,
)
_TRANSPORT_TIMEOUTS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx2.TimeoutException,
    requests.exceptions.Timeout,
)
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    httpx2.TransportError,
    requests.exceptions.ConnectionError,
)


class IdleTimeout(Exception):
    """The provider sent nothing for longer than CONFAB_LLM_IDLE_TIMEOUT."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# Every provider's client errors, mapped the same way (the clients of langchain-anthropic,
# langchain-ollama and langchain-google-genai raise their SDK's own classes).
_TIMEOUTS: tuple[type[BaseException], ...] = (
    IdleTimeout,
    TimeoutError,
    openai.APITimeoutError,
    anthropic.APITimeoutError,
    *_TRANSPORT_TIMEOUTS,
)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,
    anthropic.APIConnectionError,
    # ollama's client turns a refused connection into the builtin ConnectionError.
    ConnectionError,
    *_TRANSPORT_ERRORS,
    *_CUT_STREAM,
)


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status of a provider's error answer, if it is one."""
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        return exc.status_code
    if isinstance(exc, ollama.ResponseError):
        # -1: an error object inside a 200 stream (the model failed mid-reply).
        return exc.status_code if exc.status_code > 0 else 500
    try:
        from google.api_core.exceptions import GoogleAPICallError
    except ImportError:  # pragma: no cover - langchain-google-genai is a dependency
        return None
    for cause in _chain(exc):
        if isinstance(cause, GoogleAPICallError) and cause.code:
            return int(cause.code)
    return None


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(code, safe message) for an exception raised while producing a reply."""
    if isinstance(exc, _TIMEOUTS):
        return PROVIDER_TIMEOUT
    status = _status_of(exc)
    if status == 429:
        return ("provider_rate_limited", "The model provider is rate limiting. Try again shortly.")
    if status is not None:
        if status >= 500:
            return ("provider_error", "The model provider failed to answer.")
        return ("provider_rejected", "The model provider rejected the request.")
    if any(isinstance(cause, _CUT_STREAM) for cause in _chain(exc)):
        return STREAM_INTERRUPTED
    if isinstance(exc, _CONNECTION_ERRORS):
        return ("provider_unavailable", "Could not reach the model provider.")
    return ("internal_error", "The reply failed because of an internal error.")


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}
