"""Errors that name a problem the user can fix; the CLI prints them without a traceback."""


class CustlabelError(Exception):
    """Base of the errors shown to users as one clear message."""
