"""A real SMTP server on loopback for the notification tests (aiosmtpd).

``MailServer`` runs aiosmtpd's threaded Controller on 127.0.0.1 with an
ephemeral port (or a given one, to restart a server that was down) and keeps
every message it received, raw, in arrival order. Recipients can be refused
with a chosen reply (``refuse``), the reply to DATA can be slowed down
(``delay``) or held for one message (``hold``), and the server can require
STARTTLS or implicit TLS and AUTH.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def key(self) -> str:
        return str(self.message["X-Quorum-Key"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""


class Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refuse: dict[str, str] = {}  # address -> reply, e.g. "550 5.1.1 no such user"
        self.delay = 0.0  # seconds to wait before accepting each message's DATA
        # Hold one message: when DATA containing ``hold`` arrives, store it, set ``held``
        # and wait ``hold_for`` seconds before replying (a client can die meanwhile).
        self.hold: bytes | None = None
        self.hold_for = 0.0
        self.held = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        # Stored first, acknowledged after a pause: like a real MTA that has queued the
        # message when the client dies before reading "250" (RFC 1047), the server
        # keeps it and the client never learns.
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        if self.hold is not None and self.hold in bytes(envelope.content):
            self.hold = None
            self.held.set()
            await asyncio.sleep(self.hold_for)
        elif self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"


class _EphemeralController(Controller):
    """Controller that can bind port 0 and then knows which port it got."""

    def _trigger_server(self):  # noqa: ANN202
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        return super()._trigger_server()


class MailServer:
    def __init__(
        self,
        port: int = 0,
        *,
        handler: Handler | None = None,
        tls: str = "none",  # none | starttls | ssl
        cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.handler = handler or Handler()
        kwargs: dict = {}
        if tls != "none":
            assert cert is not None, "TLS needs a certificate (self_signed_cert)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            if tls == "ssl":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if users is not None:

            def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
                ok = (
                    isinstance(auth_data, LoginPassword)
                    and users.get(auth_data.login.decode()) == auth_data.password.decode()
                )
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticate, auth_required=True)
            if tls != "starttls":
                # plain: allow AUTH in the clear (a test only); ssl: aiosmtpd 1.4 counts only
                # STARTTLS as TLS, though an implicit-TLS connection is encrypted throughout
                kwargs["auth_require_tls"] = False
        self.controller = _EphemeralController(
            self.handler, hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs
        )
        self.controller.start()
        self.port = self.controller.port

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def stop(self) -> None:
        self.controller.stop()

    def env(self, **extra: str) -> dict[str, str]:
        """Quorum's mail settings for this server."""
        return {
            "QUORUM_MAIL": "smtp",
            "QUORUM_SMTP_HOST": "127.0.0.1",
            "QUORUM_SMTP_PORT": str(self.port),
            "QUORUM_SMTP_TLS": "none",
            "QUORUM_MAIL_FROM": "Grants Team <grants@board.example.org>",
            **extra,
        }


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def by_message_id(received: list[Received]) -> dict[str, list[Received]]:
    """Group what arrived by Message-ID, as a mail client de-duplicates."""
    out: dict[str, list[Received]] = {}
    for r in received:
        out.setdefault(r.message_id, []).append(r)
    return out
