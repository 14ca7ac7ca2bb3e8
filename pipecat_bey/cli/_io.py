"""What the commands share: their files checked before anything runs, progress shown live."""

from pathlib import Path


def check_writable(path: Path, what: str) -> None:
    """Refuse an output path that cannot be written.

    Args:
        path: Where the command will write.
        what: What the file is, for the error (e.g. "--report").

    Raises:
        ValueError: If the path is a directory or its directory does not exist.
    """
    if path.is_dir():
        raise ValueError(f"{what} {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise ValueError(f"{what} {path}: the directory {path.parent} does not exist")


def print_now(line: str) -> None:
    """Print a progress line at once, even when standard output is a pipe.

    Args:
        line: The line.
    """
    print(line, flush=True)
