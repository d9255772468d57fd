"""Delivery channels, fed only from the outbox by the dispatcher.

Two channels:

- :class:`FileChannel` (demos and tests) writes each message as an RFC 5322
  ``.eml`` file named after its unique outbox key, so writing it twice is
  harmless.
- :class:`SmtpChannel` hands each message to an SMTP server with the standard
  library's :mod:`smtplib` (plain, STARTTLS or implicit TLS; optional AUTH),
  reusing one connection for a whole dispatch run.

A channel either returns (the message was accepted) or raises
:class:`DeliveryError`, which says whether the failure is *permanent* (the
server refused this message or this recipient with a 5xx reply: sending it
again cannot help) or *temporary* (connection refused, timeout, 4xx: try
again later), and whether it concerns the whole channel (``halt``: the server
cannot be reached or refuses us, so the rest of the run is pointless) or only
this message.

:func:`channel_from_config` builds the channel from environment variables;
see ``docs/notifications.md`` for the list.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

from engine.domain.errors import QuorumError
from engine.settings import (
    DEFAULT_OUTBOX_DIR,
    DEFAULT_SENDER,
    TLS_MODES,
    Settings,
    SettingsError,
    get_settings,
)
from engine.settings import DEFAULT_SMTP_TIMEOUT as DEFAULT_TIMEOUT

DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
# Reconnect after this many messages: some servers cap messages per connection.
MESSAGES_PER_CONNECTION = 100


class ConfigError(QuorumError):
    """A mail setting that cannot be used. The message names the variable."""

    code = "config"


class DeliveryError(Exception):
    """A message was not delivered.

    ``permanent``: sending it again cannot succeed (5xx for this recipient or
    this message). ``halt``: the failure concerns the channel itself (server
    down, TLS or login refused), so the dispatcher stops the run and leaves
    the remaining messages for the next one. ``reply`` is what the server (or
    the operating system) said, for the outbox row and for officers."""

    def __init__(self, reply: str, *, permanent: bool = False, halt: bool = False) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        self.halt = halt


class Channel(Protocol):
    sender: str

    def send(self, key: str, message: EmailMessage) -> None: ...


# ---------------------------------------------------------------- file


class FileChannel:
    """Writes ``<folder>/<key>.eml``; the same key overwrites the same file."""

    name = "file"

    def __init__(self, folder: Path, sender: str = DEFAULT_SENDER) -> None:
        self.folder = Path(folder)
        self.sender = sender

    def describe(self) -> str:
        return f"file channel writing to {self.folder}"

    def send(self, key: str, message: EmailMessage) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", key) + ".eml"
            tmp = self.folder / (name + ".tmp")
            tmp.write_bytes(bytes(message))
            tmp.replace(self.folder / name)  # atomic: a reader never sees half a message
        except OSError as exc:  # disk full, permissions: the folder, not the message
            raise DeliveryError(f"cannot write to {self.folder}: {exc}", halt=True) from exc

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- SMTP


class SmtpChannel:
    """Sends through an SMTP server. One connection is opened lazily and
    reused for the run; :meth:`close` ends it (the dispatcher calls it)."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        sender: str = DEFAULT_SENDER,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in TLS_MODES:
            raise ConfigError(f"SMTP TLS mode {tls!r}: allowed values are {', '.join(TLS_MODES)}")
        self.host = host
        self.port = port or DEFAULT_PORTS[tls]
        self.tls = tls
        self.username = username
        self.password = password
        self.sender = sender
        self.envelope_from = parseaddr(sender)[1]
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0

    def describe(self) -> str:
        auth = f", as {self.username}" if self.username else ""
        return f"SMTP {self.host}:{self.port} (TLS {self.tls}{auth})"

    # --- connection -----------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        return self.ssl_context

    def _connect(self) -> smtplib.SMTP:
        where = f"{self.host}:{self.port}"
        smtp: smtplib.SMTP | None = None
        step = "connect"
        try:
            if self.tls == "ssl":
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.tls == "starttls":
                step = "starttls"
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username:
                step = "login"
                smtp.login(self.username, self.password or "")
        except smtplib.SMTPNotSupportedError as exc:
            _abandon(smtp)
            if step == "starttls":
                why = "does not offer STARTTLS; set QUORUM_SMTP_TLS=none only on a trusted network"
            else:
                why = "does not offer AUTH" + (
                    " without TLS; set QUORUM_SMTP_TLS=starttls" if self.tls == "none" else ""
                )
            raise DeliveryError(f"{where} {why}", halt=True) from exc
        except smtplib.SMTPAuthenticationError as exc:
            _abandon(smtp)
            raise DeliveryError(
                f"{where} refused the login of {self.username!r}: {_reply(exc)} "
                "(check QUORUM_SMTP_USER and QUORUM_SMTP_PASSWORD)",
                halt=True,
            ) from exc
        except smtplib.SMTPException as exc:
            _abandon(smtp)
            raise DeliveryError(f"{where} ({step}): {_reply(exc)}", halt=True) from exc
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, timeout, bad certificate
            _abandon(smtp)
            raise DeliveryError(
                f"cannot {step} to {where}: {_os_reply(exc)}"
                if step == "connect"
                else f"{where} ({step}): {_os_reply(exc)}",
                halt=True,
            ) from exc
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._sent_on_connection = 0
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    # --- sending --------------------------------------------------------
    def send(self, key: str, message: EmailMessage) -> None:
        recipients = [addr for _, addr in getaddresses(message.get_all("To", []))]
        if not recipients:
            raise DeliveryError(f"message {key!r} has no recipient", permanent=True)
        if self._smtp is not None and self._sent_on_connection >= MESSAGES_PER_CONNECTION:
            self.close()
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._send_on(self._smtp, message, recipients)
        except smtplib.SMTPServerDisconnected:
            self._drop()
            if not reused:
                raise DeliveryError(
                    f"{self.host}:{self.port} closed the connection", halt=True
                ) from None
            # An idle connection the server had dropped: one fresh attempt.
            self._smtp = self._connect()
            try:
                self._send_on(self._smtp, message, recipients)
            except smtplib.SMTPServerDisconnected:
                self._drop()
                raise DeliveryError(
                    f"{self.host}:{self.port} closed the connection", halt=True
                ) from None
        self._sent_on_connection += 1

    def _send_on(self, smtp: smtplib.SMTP, message: EmailMessage, recipients: list[str]) -> None:
        try:
            refused = smtp.send_message(message, from_addr=self.envelope_from, to_addrs=recipients)
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib has already reset the transaction: the connection stays usable.
            raise _refused(exc.recipients) from exc
        except smtplib.SMTPDataError as exc:
            raise DeliveryError(
                f"message refused: {_reply(exc)}", permanent=exc.smtp_code >= 500
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            self._drop()
            hint = (
                "the server wants STARTTLS or a login first: see QUORUM_SMTP_TLS, QUORUM_SMTP_USER"
                if exc.smtp_code == 530
                else "check QUORUM_MAIL_FROM"
            )
            raise DeliveryError(
                f"sender {exc.sender!r} refused: {_reply(exc)} ({hint})", halt=True
            ) from exc
        except smtplib.SMTPException as exc:
            self._drop()
            raise DeliveryError(f"{self.host}:{self.port}: {_reply(exc)}", halt=True) from exc
        except OSError as exc:  # timeout or reset mid-transaction
            self._drop()
            raise DeliveryError(f"{self.host}:{self.port}: {_os_reply(exc)}", halt=True) from exc
        if refused:  # some (not all) recipients refused; we send to one, so rarely seen
            raise _refused(refused)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        self._sent_on_connection = 0
        _abandon(smtp)


def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> DeliveryError:
    parts = [f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in recipients.items()]
    permanent = all(code >= 500 for code, _ in recipients.values())
    return DeliveryError("recipient refused: " + "; ".join(parts), permanent=permanent)


def _abandon(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass


def _text(msg: bytes | str) -> str:
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def _reply(exc: smtplib.SMTPException) -> str:
    code = getattr(exc, "smtp_code", None)
    msg = getattr(exc, "smtp_error", None)
    if code is not None and msg is not None:
        return f"{code} {_text(msg)}"
    return str(exc) or type(exc).__name__


def _os_reply(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------- configuration

ENV_VARS = {
    "QUORUM_MAIL": "file (default) or smtp",
    "QUORUM_MAIL_FROM": f"sender, e.g. 'Grants Team <grants@board.example.org>' "
    f"(default {DEFAULT_SENDER!r})",
    "QUORUM_OUTBOX_DIR": f"file channel: folder for .eml files (default {DEFAULT_OUTBOX_DIR})",
    "QUORUM_SMTP_HOST": "SMTP server name or address (required for smtp)",
    "QUORUM_SMTP_PORT": "SMTP port (default 25 for none, 587 for starttls, 465 for ssl)",
    "QUORUM_SMTP_TLS": "none, starttls (default) or ssl",
    "QUORUM_SMTP_USER": "login name, if the server needs AUTH",
    "QUORUM_SMTP_PASSWORD": "password for QUORUM_SMTP_USER",
    "QUORUM_SMTP_TIMEOUT": f"seconds per network operation (default {DEFAULT_TIMEOUT:g})",
    "QUORUM_SMTP_CA_FILE": "PEM file of the CA that signed the server's certificate "
    "(default: the system's trusted CAs)",
}


def channel_from_config(env: Mapping[str, str] | None = None) -> FileChannel | SmtpChannel:
    """The channel the settings ask for (the process's, or those ``env`` gives).
    Raises :class:`ConfigError` naming the variable when a value cannot be used."""
    try:
        conf = get_settings() if env is None else Settings.from_env(env)
    except SettingsError as exc:
        raise ConfigError(exc.message) from None
    if conf.mail == "file":
        return FileChannel(conf.outbox_dir, sender=conf.mail_from)
    assert conf.smtp_host is not None  # Settings refuses smtp without a host
    context = None
    if (cafile := conf.smtp_ca_file) is not None:
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"QUORUM_SMTP_CA_FILE={cafile!r}: cannot read a PEM certificate from it ({exc})"
            ) from None
    return SmtpChannel(
        conf.smtp_host,
        conf.smtp_port,
        tls=conf.smtp_tls,
        username=conf.smtp_user,
        password=conf.smtp_password,
        sender=conf.mail_from,
        timeout=conf.smtp_timeout,
        ssl_context=context,
    )


def sender_domain(sender: str) -> str:
    """The domain of the sender's address, for Message-IDs."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    domain = re.sub(r"[^A-Za-z0-9.-]+", "", domain).strip(".")
    return domain or "quorum.invalid"
