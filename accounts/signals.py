"""Receivers that keep tokens in step with the account they belong to."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.db.models.signals import post_save, pre_save

from accounts import services
from accounts.revocation import user_saved


def note_password_disabled(sender: Any, instance: Any, update_fields: Any, **kwargs: Any) -> None:
    """Before a save that leaves the user without a usable password
    (`set_unusable_password`, the admin's "password-based authentication: disabled"),
    note whether the stored one was usable: that is a password change too. One query,
    and only for such saves."""
    instance._confab_password_disabled = False
    if instance._state.adding or instance.has_usable_password():
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._confab_password_disabled = bool(stored) and is_password_usable(stored)


def revoke_tokens_on_password_change(
    sender: Any, instance: Any, created: bool, **kwargs: Any
) -> None:
    """A saved user whose password was set with `set_password` (the admin's password form,
    `manage.py changepassword`, a shell, `services.change_password`) or disabled loses
    its tokens.

    `set_password` leaves the raw password on `_password` until `save()` has run, so this
    sees exactly the saves that change a password, not every save (last_login, a
    hasher upgrade at sign-in, which clears `_password` before saving).
    """
    if created:
        return
    disabled = getattr(instance, "_confab_password_disabled", False)
    instance._confab_password_disabled = False
    if disabled or getattr(instance, "_password", None) is not None:
        services.password_changed(user=instance)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(
        note_password_disabled,
        sender=user_model,
        dispatch_uid="accounts.note_password_disabled",
    )
    post_save.connect(
        revoke_tokens_on_password_change,
        sender=user_model,
        dispatch_uid="accounts.revoke_tokens_on_password_change",
    )
    # A user saved inactive (the admin, a command) closes their sockets at once.
    post_save.connect(user_saved, sender=user_model, dispatch_uid="accounts.user_saved")
