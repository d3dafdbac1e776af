from django.core.management.base import BaseCommand

from conversations.recovery import recover_once


class Command(BaseCommand):
    help = "End turns left streaming by a dead worker as failed/interrupted and release locks."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stale-after",
            type=float,
            default=None,
            help="Seconds without heartbeat before a turn counts as dead "
            "(default CONFAB_TURN_STALE_SECONDS).",
        )

    def handle(self, *args, stale_after=None, **options):
        ended = recover_once(stale_after)
        self.stdout.write(f"Ended {ended} interrupted message(s).")
