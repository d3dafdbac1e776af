from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    label = "accounts"
    verbose_name = "Accounts and devices"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from accounts.revocation import user_saved

        # A user saved inactive (the admin, a command) closes their sockets at once.
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="confab-revoke")
