from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"
    verbose_name = "API access"

    def ready(self) -> None:
        # Registers the deploy check for the middleware in core.middleware.
        import core.middleware  # noqa: F401
