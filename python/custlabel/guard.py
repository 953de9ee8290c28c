"""Guards for commands that write master data."""

from __future__ import annotations

from custlabel.config import Settings
from custlabel.errors import CustlabelError


def require_named_database(settings: Settings, named: str | None, action: str) -> None:
    """Refuse to write to a server other than the embedded one unless the operator named its database."""
    if settings.embedded:
        return
    connection = settings.connection
    actual = connection.dbname
    where = f"database {actual!r} on {connection.host}:{connection.port}"
    if named is None:
        raise CustlabelError(
            f"{action} would write to {where}, which is not the embedded server; "
            f"if you mean it, add --i-mean-database {actual}"
        )
    if named != actual:
        raise CustlabelError(
            f"--i-mean-database {named!r} does not match the connected {where}: nothing written"
        )
