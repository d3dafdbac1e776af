"""The message shape every surface sends (REST, events, SSE, websocket), written down once.

The event tests check conversations/events.py against it, and the benchmarks' page-number
baseline (bench/baseline.py) serializes exactly these fields, so the baseline is compared
with Confab on the same payload. It lives in tests/ because it is an expectation, not
product code: the tests keep their own copy of the shape rather than reading it from
the code under test, and bench/ (dev-only, like tests/) imports it from here.
"""

from __future__ import annotations

# In the order conversations.payloads.message_payload writes them.
MESSAGE_FIELDS = (
    "id",
    "conversation",
    "role",
    "text",
    "content",
    "attachments",
    "status",
    "turn_id",
    "client_message_id",
    "model",
    "usage",
    "error",
    "created_at",
    "updated_at",
    "feedback",
    "parent_id",
    "siblings",
)
