"""Telling users a reply ended while they were away: Web Push and webhooks, via an outbox.

When a turn's reply ends (complete or failed; a cancel is the user's own doing), the
ending transaction writes a row per destination into the outbox (`Notification`):
one per push credential of the user's devices — only when no live connection follows
that conversation (`conversations.presence`) — and one for the webhook when
CONFAB_WEBHOOK_URL is set. Rows are written by the same write as the reply
(`conversations.effects`), so a notification exists if and only if its reply ended.

Every server process runs the sender (`delivery.deliver_due`, every second): it claims
due rows (one claimer per row: `FOR UPDATE SKIP LOCKED` on PostgreSQL, a lease on
both), sends them, and retries failures with exponential backoff until
CONFAB_NOTIFY_MAX_ATTEMPTS, then dead-letters them. Delivery is at least once; each row
has an idempotency key (`event_id`) that webhook receivers get as `webhook-id` and that
stays the same across retries.
"""
