"""Keeping API keys and meeting tokens out of logs, reprs and error texts."""

MASK = "***"


def redact(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each secret in a text with a mask.

    Args:
        text: Text that may quote a secret (a server's error body, say).
        *secrets: The secrets to hide; None and empty ones are skipped.

    Returns:
        The text with each secret replaced by ``***``.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
