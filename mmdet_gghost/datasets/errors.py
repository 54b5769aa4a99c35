"""The errors of the data set checks: each message names the file and the fix.

Both ``ValueError`` (a data set problem) and, for missing files, also
``FileNotFoundError``, so existing ``except`` clauses keep working.
"""


class DatasetError(ValueError):
    """A data set is missing or malformed; the message says how to fix it."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data set file or folder does not exist.

    Also a ``FileNotFoundError``, so ``except FileNotFoundError`` works.
    """


class CorruptImageError(DatasetError):
    """An image file exists but cannot be decoded."""
