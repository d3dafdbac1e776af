"""Receivers that keep tokens in step with the account they belong to."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save

from accounts import services


def revoke_tokens_on_password_change(
    sender: Any, instance: Any, created: bool, **kwargs: Any
) -> None:
    """A saved user whose password was set with `set_password` (the admin's password form,
    `manage.py changepassword`, a shell, `services.change_password`) loses its tokens.

    `set_password` leaves the raw password on `_password` until `save()` has run, so this
    sees exactly the saves that change a password, not every save (last_login, a
    hasher upgrade at sign-in, which clears `_password` before saving).
    """
    if created or getattr(instance, "_password", None) is None:
        return
    services.password_changed(user=instance)


def connect() -> None:
    post_save.connect(
        revoke_tokens_on_password_change,
        sender=get_user_model(),
        dispatch_uid="accounts.revoke_tokens_on_password_change",
    )
