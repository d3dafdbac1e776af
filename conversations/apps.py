from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        # SQLite connections get the function the full-text triggers call.
        from conversations.search import sqlite  # noqa: F401
