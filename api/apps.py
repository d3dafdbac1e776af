from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"
    verbose_name = "API access"

    def ready(self) -> None:
        # Registers the deploy check for the middleware in backend.middleware.
        import backend.middleware  # noqa: F401
