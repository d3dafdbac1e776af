from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from knox.models import get_token_model


class Command(BaseCommand):
    help = "Create the demo user (idempotent) and print a fresh bearer token for it."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")
        parser.add_argument("--port", default="8000", help="The port `make run` serves on.")

    def handle(self, *args, username, password, port, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save()
        Token = get_token_model()
        # One demo token: reruns replace it instead of piling tokens up.
        Token.objects.filter(user=user, name="make-run").delete()
        _, token = Token.objects.create(user=user, name="make-run")
        self.stdout.write(
            f"Demo user: {username} / {password}\nBearer token: {token}\n"
            f"Try: curl -H 'Authorization: Bearer {token}' http://127.0.0.1:{port}/api/v1/auth/me/"
        )
