"""The shared-secret token and the signed data URLs of the redirect dance.

Clients present the token as ``delegation=TOKEN`` (what fsspec's ``webhdfs``
client sends when built with ``token=``) or as ``Authorization: Bearer TOKEN``.
The 307 ``Location`` of OPEN/CREATE/APPEND carries a *ticket* instead of the
token: an HMAC over (op, path, extra, expiry) keyed from the token, so a data
URL works for any ``offset``/``length`` until it expires, names one path and
one operation, and never reveals the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping

from .errors import GatewayError

__all__ = ["Authenticator"]


class Authenticator:
    """Checks tokens and issues/verifies data-URL tickets.

    Parameters
    ----------
    token:
        The shared secret; ``None`` accepts every request (loopback use).
    ticket_ttl:
        Seconds a data URL stays valid.
    clock:
        Returns the time in seconds (injectable for tests).
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        ticket_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ):
        self.token = token
        self.ticket_ttl = ticket_ttl
        self.clock = clock
        seed = token.encode() if token else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"emrfs-gateway-ticket\0" + seed).digest()

    def check(self, params: Mapping[str, str], headers: Mapping[str, str]) -> None:
        """Raise a 401 ``SecurityException`` unless the request carries the token."""
        if self.token is None:
            return
        given = params.get("delegation")
        if given is None:
            scheme, _, value = headers.get("Authorization", "").partition(" ")
            given = value.strip() if scheme.lower() == "bearer" else None
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise GatewayError(
                "SecurityException",
                "missing or wrong gateway token: pass delegation=<token> or "
                "'Authorization: Bearer <token>' (emrfs gateway --token)",
            )

    def _mac(self, op: str, path: str, extra: str, expiry: int) -> str:
        message = "\0".join((op, path, extra, str(expiry))).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def ticket(self, op: str, path: str, extra: str = "") -> str:
        expiry = int(self.clock() + self.ticket_ttl)
        return f"{expiry}.{self._mac(op, path, extra, expiry)}"

    def verify_ticket(self, ticket: str, op: str, path: str, extra: str = "") -> None:
        expiry_text, _, mac = ticket.partition(".")
        try:
            expiry = int(expiry_text)
        except ValueError:
            expiry = -1
        good = expiry >= 0 and hmac.compare_digest(mac, self._mac(op, path, extra, expiry))
        if not good:
            raise GatewayError(
                "SecurityException",
                f"invalid data URL ticket for {op} {path}; request a new redirect from the gateway",
            )
        if expiry < self.clock():
            raise GatewayError(
                "SecurityException", f"expired data URL for {op} {path}; request a new redirect"
            )
