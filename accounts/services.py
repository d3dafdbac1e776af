"""Accounts and API tokens: sign-up, sign-in, sign-out.

Shared by the API surfaces (REST today; GraphQL or a CLI may call the same
functions). Tokens are knox tokens (opaque, hashed at rest, expiring) with a
device name; see `accounts.models.AccessToken`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, user_logged_in, user_logged_out
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from knox.models import get_token_model
from knox.settings import knox_settings

from accounts.models import PushCredential, PushPlatform
from accounts.revocation import revoked_on_commit
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


class WrongCurrentPassword(ValidationFailed):
    code = "INVALID_CREDENTIALS"
    default_detail = "The current password is wrong."


def normalize_username(username: str) -> str:
    """The form a username is stored and looked up in: NFKC (Django's own
    `normalize_username`), so fullwidth `BOB` is `BOB`. Case is kept for display."""
    return unicodedata.normalize("NFKC", username)


def username_key(username: str) -> str:
    """What two usernames must not share: NFKC, then case-folded (fullwidth `BOB`, `Bob`
    and `bob` are one name). Used for uniqueness, sign-in and the sign-in throttle's counter."""
    return unicodedata.normalize("NFKC", normalize_username(username).casefold())


def find_user_by_username(username: str) -> Any:
    """The account a typed username names, or None: the one whose name is equal once
    normalized and case-folded (an exact match first, for accounts that differ only by
    case from before uniqueness was case-insensitive).

    The database's case-insensitive comparison narrows the candidates (PostgreSQL's
    UPPER is Unicode-aware, SQLite's only ASCII); the key decides.
    """
    user_model = get_user_model()
    name = normalize_username(username)
    key = username_key(name)
    candidates = list(
        user_model.objects.filter(
            Q(username__iexact=name) | Q(username__iexact=key) | Q(username=name)
        )[:20]
    )
    for candidate in sorted(candidates, key=lambda user: user.username != name):
        if username_key(candidate.username) == key:
            return candidate
    return None


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

    Usernames are NFKC-normalized and unique once case-folded (`username_key`), so
    `Alice` and fullwidth `ALICE` cannot impersonate `alice`.
    """
    if not registration_open():
        raise RegistrationClosed()
    user_model = get_user_model()
    username = normalize_username(username)
    username_field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    fields: dict[str, list[dict[str, str]]] = {}
    try:
        username_field.run_validators(username)
    except DjangoValidationError as exc:
        fields.update(_validation_field_errors("username", exc))
    taken = {"username": [{"code": "unique", "message": "This username is taken."}]}
    if not fields and find_user_by_username(username) is not None:
        fields.update(taken)
    candidate = user_model(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        fields.update(_validation_field_errors("password", exc))
    if fields:
        raise ValidationFailed(f"Invalid {', '.join(sorted(fields))}.", fields=fields)
    try:
        with transaction.atomic():
            return user_model.objects.create_user(username=username, password=password, email=email)
    except IntegrityError:  # the same name registered at the same moment
        raise ValidationFailed("Invalid username.", fields=taken) from None


def login(*, request: Any, username: str, password: str) -> Any:
    """The active user with these credentials, or InvalidCredentials. The username is
    matched as registration matches it (`find_user_by_username`): fullwidth `ALICE` and `Alice`
    sign in as `alice`."""
    account = find_user_by_username(username)
    if account is None:
        # Still run the hasher, so an unknown name takes as long as a wrong password.
        authenticate(request, username=normalize_username(username), password=password)
        raise InvalidCredentials()
    user = authenticate(request, username=account.get_username(), password=password)
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
        stale = list(live.order_by("-created").values_list("pk", "public_id")[limit - 1 :])
        if stale:
            # Revoked: their sockets close too (accounts.revocation).
            revoked_on_commit(public_id for _, public_id in stale)
            token_model.objects.filter(pk__in=[pk for pk, _ in stale]).delete()
    instance, raw = token_model.objects.create(
        user=user, name=(device_name or "")[:MAX_DEVICE_NAME_CHARS]
    )
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return instance, raw


@transaction.atomic
def revoke_token(*, token: Any, request: Any = None) -> None:
    """Revoke one token (the caller's own device); its open sockets close 4401."""
    user = token.user
    revoked_on_commit([token.public_id])
    token.delete()
    user_logged_out.send(sender=user.__class__, request=request, user=user)


def revoke_all_tokens(*, user: Any, request: Any = None) -> int:
    """Revoke every token of the user (sign out everywhere); returns how many. Every
    socket opened with one of them closes 4401."""
    return revoke_other_tokens(user=user, request=request)


@transaction.atomic
def revoke_other_tokens(*, user: Any, keep: Any = None, request: Any = None) -> int:
    """Revoke every token of the user but `keep` (the device that asked; None: all of
    them), in one statement; returns how many. Their sockets close 4401."""
    tokens = get_token_model().objects.filter(user=user)
    if keep is not None:
        tokens = tokens.exclude(pk=keep.pk)
    public_ids = list(tokens.values_list("public_id", flat=True))
    revoked_on_commit(public_ids)
    tokens.delete()
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    return len(public_ids)


@transaction.atomic
def change_password(
    *, user: Any, current_password: str, new_password: str, keep_token: Any = None
) -> None:
    """Set a new password after checking the current one; signs out every other device
    (`keep_token`, the caller's, stays valid). Raises WrongCurrentPassword, or
    ValidationFailed naming `new_password` when the validators refuse it."""
    if not user.check_password(current_password):
        raise WrongCurrentPassword(
            fields={"current_password": [{"code": "invalid", "message": "Wrong password."}]}
        )
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "Invalid new_password.", fields=_validation_field_errors("new_password", exc)
        ) from None
    user._confab_keep_token = keep_token
    try:
        user.set_password(new_password)
        user.save(update_fields=["password"])
    finally:
        user._confab_keep_token = None


def password_changed(*, user: Any) -> None:
    """Revoke the tokens of a user whose password was just set (any way: the admin,
    `changepassword`, `set_password` + `save`, `change_password`): a stolen token must
    not outlive the password it was obtained with. `change_password` keeps its caller's
    token. Called by `accounts.signals` on save."""
    revoke_other_tokens(user=user, keep=getattr(user, "_confab_keep_token", None))


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
