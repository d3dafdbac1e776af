import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Command(BaseCommand):
    help = "Make a VAPID key pair for Web Push: set the two lines printed in the environment."

    def handle(self, *args, **options):
        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_numbers().private_value.to_bytes(32, "big")
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.stdout.write(f"CONFAB_VAPID_PRIVATE_KEY={_b64url(private)}")
        self.stdout.write(f"CONFAB_VAPID_PUBLIC_KEY={_b64url(public)}")
