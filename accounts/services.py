"""Accounts and API tokens: sign-up, sign-in, sign-out.

Shared by the API surfaces (REST today; GraphQL or a CLI may call the same
functions). Tokens are knox tokens (opaque, hashed at rest, expiring) with a
device name; see `accounts.models.AccessToken`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, user_logged_in, user_logged_out
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from knox.models import get_token_model
from knox.settings import knox_settings

from accounts.models import PushCredential, PushPlatform
from accounts.selectors import devices_of
from core.errors import NotFound, PermissionDenied, ValidationFailed

MAX_DEVICE_NAME_CHARS = 100


class InvalidCredentials(ValidationFailed):
    """Wrong username or password, or an inactive account (indistinguishable on purpose)."""

    code = "INVALID_CREDENTIALS"
    default_detail = "Unable to sign in with the given username and password."


class RegistrationClosed(PermissionDenied):
    code = "REGISTRATION_CLOSED"
    default_detail = "Sign-up is closed on this server."


def registration_open() -> bool:
    return bool(getattr(settings, "CONFAB_REGISTRATION_OPEN", False))


def _validation_field_errors(
    field: str, error: DjangoValidationError
) -> dict[str, list[dict[str, str]]]:
    return {
        field: [
            {"code": item.code or "invalid", "message": " ".join(item.messages)}
            for item in error.error_list
        ]
    }


@transaction.atomic
def register_user(*, username: str, password: str, email: str = "") -> Any:
    """Create an account; raises ValidationFailed naming each bad field.

    Usernames are unique case-insensitively, so `Alice` cannot impersonate `alice`.
    """
    if not registration_open():
        raise RegistrationClosed()
    user_model = get_user_model()
    username_field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    fields: dict[str, list[dict[str, str]]] = {}
    try:
        username_field.run_validators(username)
    except DjangoValidationError as exc:
        fields.update(_validation_field_errors("username", exc))
    if not fields and user_model.objects.filter(username__iexact=username).exists():
        fields["username"] = [{"code": "unique", "message": "This username is taken."}]
    candidate = user_model(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        fields.update(_validation_field_errors("password", exc))
    if fields:
        raise ValidationFailed(f"Invalid {', '.join(sorted(fields))}.", fields=fields)
    return user_model.objects.create_user(username=username, password=password, email=email)


def login(*, request: Any, username: str, password: str) -> Any:
    """The active user with these credentials, or InvalidCredentials."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    return user


@transaction.atomic
def issue_token(*, user: Any, device_name: str = "", request: Any = None) -> tuple[Any, str]:
    """Create a token for one device; returns (token row, raw token shown once).

    Expired tokens are deleted. When the user already holds REST_KNOX's
    TOKEN_LIMIT_PER_USER live tokens, the oldest are revoked: refusing the
    sign-in instead would lock out a user whose lost devices still hold tokens
    (logout-all itself needs a token).
    """
    token_model = get_token_model()
    now = timezone.now()
    tokens = token_model.objects.filter(user=user)
    tokens.filter(expiry__lt=now).delete()
    limit = knox_settings.TOKEN_LIMIT_PER_USER
    if limit:
        live = tokens.filter(Q(expiry__gte=now) | Q(expiry__isnull=True))
        stale = list(live.order_by("-created").values_list("pk", flat=True)[limit - 1 :])
        if stale:
            token_model.objects.filter(pk__in=stale).delete()
    instance, raw = token_model.objects.create(
        user=user, name=(device_name or "")[:MAX_DEVICE_NAME_CHARS]
    )
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return instance, raw


def revoke_token(*, token: Any, request: Any = None) -> None:
    """Revoke one token (the caller's own device)."""
    user = token.user
    token.delete()
    user_logged_out.send(sender=user.__class__, request=request, user=user)


def revoke_all_tokens(*, user: Any, request: Any = None) -> int:
    """Revoke every token of the user (sign out everywhere); returns how many."""
    deleted, _ = get_token_model().objects.filter(user=user).delete()
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    return deleted


def revoke_device(*, user: Any, device_id: Any, request: Any = None) -> None:
    """Sign one of the user's devices out (its token and push credentials go); NotFound
    for an id that is not one of the user's live devices."""
    try:
        token = devices_of(user).get(public_id=device_id)
    except (get_token_model().DoesNotExist, DjangoValidationError, ValueError):
        raise NotFound("Device not found.") from None
    revoke_token(token=token, request=request)


def register_push(*, token: Any, platform: str, data: dict[str, Any]) -> PushCredential:
    """Set where the device of `token` gets its push notifications (replacing any)."""
    data = validate_push_data(platform=platform, data=data)
    credential, _ = PushCredential.objects.update_or_create(
        token=token, defaults={"user_id": token.user_id, "platform": platform, "data": data}
    )
    return credential


def remove_push(*, token: Any) -> None:
    """Stop pushing to the device of `token`."""
    PushCredential.objects.filter(token=token).delete()


MAX_PUSH_FIELD_CHARS = 2048


def validate_push_data(*, platform: str, data: Any) -> dict[str, Any]:
    """The credential a platform needs: a Web Push subscription (an https endpoint and
    its two keys) or an APNs / FCM device token."""
    if platform not in PushPlatform.values:
        raise ValidationFailed.for_field(
            "platform", "invalid", f"platform is one of {', '.join(PushPlatform.values)}."
        )
    if not isinstance(data, dict):
        raise ValidationFailed.for_field("subscription", "invalid", "Expected an object.")
    if platform == PushPlatform.WEBPUSH:
        endpoint = data.get("endpoint")
        keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
        if not _short_text(endpoint) or not endpoint.startswith(("https://", "http://")):
            raise ValidationFailed.for_field(
                "subscription.endpoint", "invalid", "The push service's URL."
            )
        for key in ("p256dh", "auth"):
            if not _short_text(keys.get(key)):
                raise ValidationFailed.for_field(
                    f"subscription.keys.{key}", "required", f"keys.{key} is required."
                )
        return {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}
    if not _short_text(data.get("token")):
        raise ValidationFailed.for_field("token", "required", "The device's push token.")
    return {"token": data["token"]}


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_PUSH_FIELD_CHARS
