"""Reading the TOML files a user names on the command line (``--config``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from jaxreg_lab.errors import UsageError

__all__ = ["read_toml"]


def read_toml(path: Path, option: str = "--config") -> dict:
    """The table of a TOML file, or a :class:`jaxreg_lab.config.UsageError` naming
    ``option`` and the fault.

    Arguments:
        path: the file.
        option: the command-line option that named it.

    Returns:
        The parsed table.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{option}: no such file {path}")
    if not path.is_file():
        raise UsageError(f"{option}: {path} is not a file")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise UsageError(f"{option}: {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise UsageError(f"{option}: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{option}: malformed TOML in {path}: {e}") from None
