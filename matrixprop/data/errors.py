"""The exception raised for unreadable or invalid data files."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A data file or dataset that cannot be read or fails validation.

    The message is one line that names the file (and, for text files, the line and
    column) and says what is wrong. It subclasses `ValueError`, so code that catches
    bad input in general catches it too.
    """
