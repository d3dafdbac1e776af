"""Usage of model calls, their daily roll-up, and quotas (registered by `conversations.models`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# Cost columns: USD, ten decimal places (a cheap model's call of a few tokens costs
# millionths of a cent), up to ten billion.
COST = {"max_digits": 20, "decimal_places": 10}


class UsageKind(models.TextChoices):
    TURN = "turn", "Turn"
    REGENERATE = "regenerate", "Regenerate"
    GREETING = "greeting", "Greeting"
    TITLE = "title", "Automatic title"


class UsageRecord(models.Model):
    """One model call: its tokens and what they cost at the prices of the moment.

    A ledger: it outlives the conversation and the message (plain ids, no foreign keys,
    so deleting a conversation or regenerating a reply costs no extra write here)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records"
    )
    conversation_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    model = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=UsageKind.choices)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(default=0, **COST)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "conversations"
        indexes = [models.Index(fields=["user", "created_at"], name="usage_user_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.model}: {self.input_tokens}+{self.output_tokens}"


class UsageDay(models.Model):
    """The roll-up of `UsageRecord`: one row per user, UTC day, model and conversation,
    incremented in the transaction that writes the record (an upsert). A month of a
    user's usage is at most 31 x models x conversations-of-the-month rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    model = models.CharField(max_length=100)
    # 0: no conversation (a call outside one). Not a foreign key: see UsageRecord.
    conversation_id = models.BigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(default=0, **COST)

    class Meta:
        app_label = "conversations"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day", "model", "conversation_id"], name="usage_day_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.model}"


class UserQuota(models.Model):
    """A user's quota overrides (empty: the CONFAB_QUOTA_* default) and the row the
    quota's admission locks (`select_for_update`), so concurrent turns of one user are
    admitted one at a time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_quota"
    )
    unlimited = models.BooleanField(
        default=False, help_text="No quota at all for this user, whatever the defaults."
    )
    tokens_per_day = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: CONFAB_QUOTA_TOKENS_PER_DAY."
    )
    tokens_per_month = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: CONFAB_QUOTA_TOKENS_PER_MONTH."
    )
    cost_per_day = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="USD. Empty: CONFAB_QUOTA_COST_PER_DAY.",
    )
    cost_per_month = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="USD. Empty: CONFAB_QUOTA_COST_PER_MONTH.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "conversations"

    def __str__(self) -> str:
        return f"quota of user {self.user_id}"


class QuotaReservation(models.Model):
    """What an admitted turn counts for until it ends (CONFAB_QUOTA_TURN_RESERVE_TOKENS
    and their cost). Counted while its turn holds its conversation's lock or waits
    queued; the admission deletes the ones whose turn ended."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation_id = models.BigIntegerField()
    turn_id = models.UUIDField(unique=True)
    tokens = models.PositiveIntegerField()
    cost = models.DecimalField(**COST)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "conversations"
        indexes = [models.Index(fields=["user"], name="quota_reservation_user")]

    def __str__(self) -> str:
        return f"reservation of turn {self.turn_id}"
