"""Errors of the Beyond Presence client and the avatar's Daily glue.

Every error carries the HTTP status where there is one and the server's message,
and none ever quotes an API key or a meeting token.
"""

from typing import Any


class BeyError(Exception):
    """Base of every error this package raises about the avatar.

    Attributes:
        message: What went wrong, as the server or the client said it.
        status: The HTTP status, or None where there was no answer.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Create the error.

        Args:
            message: What went wrong.
            status: The HTTP status, if there was one.
        """
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status is not None else self.message


class BeyConfigError(BeyError, ValueError):
    """A missing or invalid setting (an API key, a URL); raised at construction."""


class BeyAPIError(BeyError):
    """The API answered with an error status not covered by a subclass."""


class BeyAuthError(BeyAPIError):
    """The API key is missing, unknown or not allowed (401, 403)."""


class BeyValidationError(BeyAPIError):
    """The API rejected the request body (422).

    Attributes:
        detail: The parsed ``detail`` list of FastAPI's ``HTTPValidationError``.
    """

    def __init__(self, message: str, *, status: int | None = 422, detail: list[Any]) -> None:
        """Create the error.

        Args:
            message: What went wrong.
            status: The HTTP status.
            detail: The parsed validation errors.
        """
        super().__init__(message, status=status)
        self.detail = detail


class BeyRateLimitError(BeyAPIError):
    """Too many requests (429), after the retries were spent.

    Attributes:
        retry_after: Seconds the server asked to wait, if it said.
    """

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        """Create the error.

        Args:
            message: What went wrong.
            status: The HTTP status.
            retry_after: Seconds the server asked to wait.
        """
        super().__init__(message, status=status)
        self.retry_after = retry_after


class BeyServerError(BeyAPIError):
    """The API failed on its side (5xx)."""


class BeyConnectionError(BeyError):
    """The API could not be reached, or did not answer in time."""


class BeyResponseError(BeyError):
    """A success status whose body is not the session the API contract describes."""


class DailyAPIError(BeyError):
    """Daily refused or could not be reached (minting the avatar's token, ejecting it)."""
