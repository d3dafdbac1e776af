"""Map what can go wrong in a turn to a stable error code and a safe message.

Raw exception text never reaches a client: it may carry URLs, keys or the
prompt. The full exception goes to the server log instead.
"""

from __future__ import annotations

import httpx
import openai

PROVIDER_TIMEOUT = ("provider_timeout", "The model provider did not answer in time.")
STREAM_INTERRUPTED = ("provider_stream_interrupted", "The model's reply stream was cut off.")


class IdleTimeout(Exception):
    """The provider sent nothing for longer than CONFAB_LLM_IDLE_TIMEOUT."""


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(code, safe message) for an exception raised while producing a reply."""
    if isinstance(
        exc, IdleTimeout | openai.APITimeoutError | TimeoutError | httpx.TimeoutException
    ):
        return PROVIDER_TIMEOUT
    if isinstance(exc, openai.RateLimitError):
        return ("provider_rate_limited", "The model provider is rate limiting. Try again shortly.")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ("provider_error", "The model provider failed to answer.")
        return ("provider_rejected", "The model provider rejected the request.")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.StreamError):
        return STREAM_INTERRUPTED
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, httpx.RemoteProtocolError | httpx.ReadError):
            return STREAM_INTERRUPTED
        return ("provider_unavailable", "Could not reach the model provider.")
    return ("internal_error", "The reply failed because of an internal error.")


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}
