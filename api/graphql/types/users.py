"""The authenticated user."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type(description="The authenticated user.")
class User:
    id: strawberry.ID
    username: str

    @classmethod
    def from_model(cls, user: Any) -> User:
        return cls(id=strawberry.ID(str(user.pk)), username=user.get_username())
