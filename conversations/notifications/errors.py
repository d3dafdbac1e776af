"""How a destination can fail."""


class DeliveryFailed(Exception):
    """A destination refused or failed; `permanent` failures are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent
