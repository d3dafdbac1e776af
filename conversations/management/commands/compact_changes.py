from django.core.management.base import BaseCommand

from conversations.sync.services import compact_changes


class Command(BaseCommand):
    help = (
        "Delete changes-feed rows older than CONFAB_SYNC_RETENTION_DAYS (each server "
        "process also does this hourly). Older cursors then answer 410 SYNC_CURSOR_EXPIRED."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=float, default=None)

    def handle(self, *args, older_than_days, **options):
        deleted = compact_changes(older_than_days=older_than_days)
        self.stdout.write(f"Deleted {deleted} change(s).")
