"""API tokens for tests: a signed-in device without going through sign-in."""

from knox.models import get_token_model


def make_token(user, name: str = "tests") -> str:
    _, token = get_token_model().objects.create(user=user, name=name)
    return token
