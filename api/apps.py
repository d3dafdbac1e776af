from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"
    verbose_name = "API access"

    def ready(self) -> None:
        # Registers the deploy check for the middleware in core.middleware.
        import core.middleware  # noqa: F401
        from api import admin_login

        # The admin's login spends the REST sign-in counter.
        admin_login.install()
