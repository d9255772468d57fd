"""Every QUORUM_* environment variable, read and validated in one place.

A leaf module: it imports nothing from the project, so every layer may read it.
Entry points (``quorum`` commands, ``quorum serve``, the scheduler) call
:func:`get_settings` at start; a bad value stops them there with
:class:`SettingsError`, whose message names the variable, the value and what
is allowed. Modules read the one object through :func:`get_settings` rather
than ``os.environ``.

The object is cached for the environment it was read from: it is read again
only when a ``QUORUM_*`` variable changes (so ``monkeypatch.setenv`` in a test
is seen). :func:`override_settings` puts a given object in force for a block
(tests); :func:`reset_settings` drops the cache. :meth:`Settings.from_env`
reads an explicit mapping instead of the process environment (the helpers
that take ``env=`` use it).

A blank value (empty or spaces) counts as unset, as it always has; values
are stripped, except ``QUORUM_SMTP_PASSWORD`` (spaces may be part of a
password).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PREFIX = "QUORUM_"

DEFAULT_DATABASE_URL = "sqlite:///quorum.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_SENDER = "Quorum <quorum@localhost>"
DEFAULT_OUTBOX_DIR = "var/outbox"
DEFAULT_UPLOAD_DIR = "var/uploads"
DEFAULT_SMTP_TIMEOUT = 30.0
DEFAULT_SWEEP_AT = "07:00"
DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_DISPATCH_SECONDS = 30
DEFAULT_IDEMPOTENCY_KEY_HOURS = 24
DEFAULT_DIGEST_THRESHOLD = 10  # messages to one person in one sweep before they go as a digest
DEFAULT_CATCHUP_GAP_DAYS = 3  # days without a sweep after which the next one waits for an officer
DEFAULT_SWEEP_CHUNK = 1000  # grants per chunk of the sweep: one short write transaction each
DEFAULT_SWEEP_CHUNK_MS = 75  # and no chunk longer than this, as near as the last one tells
DEFAULT_SESSION_IDLE_MINUTES = 120  # a web session unused this long ends
DEFAULT_SESSION_MAX_HOURS = 12  # and every web session ends this long after sign-in
MAX_SESSION_HOURS = 24 * 30
DEFAULT_CHECKPOINT_DIR = "var/checkpoints"
# placeholders for a demonstration (org-id.guide's XE-EXAMPLE list is for examples):
# a real publisher sets its registered prefix and its own identifier
DEFAULT_GIVING_PREFIX = "360G-quorum-example"
DEFAULT_FUNDER_ID = "XE-EXAMPLE-quorum-board"
DEFAULT_FUNDER_NAME = "Quorum example board"
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")
TLS_MODES = ("none", "starttls", "ssl")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """One or more QUORUM_* values cannot be used; ``message`` says which,
    what was wrong and what is allowed (one line per variable)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- the parsers
# Shared with the entry points that also take the value from a command-line
# option (``quorum scheduler --sweep-at`` ...), so both give the same message.


def parse_sweep_at(raw: str) -> tuple[int, int]:
    try:
        hh, mm = (int(x) for x in raw.strip().split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise ValueError
    except ValueError:
        raise SettingsError(
            f"sweep time {raw!r} (--sweep-at or QUORUM_SWEEP_AT): write HH:MM, e.g. 07:00"
        ) from None
    return hh, mm


def parse_timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except Exception:  # ValueError, ZoneInfoNotFoundError, IsADirectoryError ...
        raise SettingsError(
            f"time zone {raw!r} (--timezone or QUORUM_TIMEZONE): use a name such as "
            "Europe/London or UTC"
        ) from None
    return raw


def parse_dispatch_seconds(raw: object) -> int:
    try:
        every = int(str(raw).strip())
        if every < 1:
            raise ValueError
    except ValueError:
        raise SettingsError(
            f"dispatch interval {raw!r} (--dispatch-every or QUORUM_DISPATCH_SECONDS): a whole "
            "number of seconds, 1 or more"
        ) from None
    return every


def _whole(
    name: str,
    raw: object,
    lo: int,
    hi: int | None,
    unit: str,
    *,
    span: str | None = None,
    then: str = "",
    lenient: bool = False,
) -> int:
    """``raw`` as a whole number from ``lo`` to ``hi`` (None: no upper end), else a
    ValueError: "<name>=<raw>: <unit><span> is needed<then>", the span " from lo to
    hi" or ", lo or more," unless given. Digits only, unless ``lenient`` (then what
    ``int`` reads, spaces around it allowed)."""
    text = str(raw)
    try:
        if lenient:
            value = int(text.strip())
        elif text.isdigit():
            value = int(text)
        else:
            raise ValueError
        if value < lo or (hi is not None and value > hi):
            raise ValueError
    except ValueError:
        if span is None:
            span = f" from {lo} to {hi}" if hi is not None else f", {lo} or more,"
        raise ValueError(f"{name}={text!r}: {unit}{span} is needed{then}") from None
    return value


def is_key_id(key_id: str) -> bool:
    """An audit key's id: 1 to 32 of letters, digits, '.', '_', '-' (stored per event)."""
    return 0 < len(key_id) <= 32 and all(c.isascii() and (c.isalnum() or c in "._-")
                                         for c in key_id)  # fmt: skip


def check_sender(sender: str) -> str:
    _, addr = parseaddr(sender)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        raise SettingsError(
            f"QUORUM_MAIL_FROM={sender!r}: an email address is needed, e.g. "
            "'Grants Team <grants@board.example.org>' or grants@board.example.org"
        )
    return sender


# ---------------------------------------------------------------- the object


class Settings(BaseSettings):
    """The installation's settings: field ``x`` is the variable ``QUORUM_X``."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, case_sensitive=False, extra="ignore", frozen=True,
        validate_default=False,  # the defaults are valid by construction
    )

    # who a CLI change is made as (``--as`` wins)
    actor: str | None = None
    # storage
    database_url: str = DEFAULT_DATABASE_URL
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "NORMAL"
    # web
    secret_key: str | None = Field(default=None, repr=False)
    https_only: bool = False
    base_url: str = DEFAULT_BASE_URL
    upload_dir: Path = Path(DEFAULT_UPLOAD_DIR)
    upload_max_mb: float = 10.0
    # web sessions (quorum_web/auth.py, engine/store/sessions.py; docs/security.md)
    session_idle_minutes: int = DEFAULT_SESSION_IDLE_MINUTES
    session_max_hours: int = DEFAULT_SESSION_MAX_HOURS
    # bid imports (CSV/XLSX, engine/entry/importer.py): file size, rows, an XLSX's unzipped size
    import_max_mb: float = 5.0
    import_max_rows: int = 5000
    import_max_unzipped_mb: float = 50.0
    # rule files in force (None: the file shipped in rules/)
    returns_rules: Path | None = None
    reminders_rules: Path | None = None
    # mail
    mail: Literal["file", "smtp"] = "file"
    mail_from: str = DEFAULT_SENDER
    mail_grace_seconds: int = 600
    outbox_dir: Path = Path(DEFAULT_OUTBOX_DIR)
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_tls: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_timeout: float = DEFAULT_SMTP_TIMEOUT
    smtp_ca_file: str | None = None
    # people: how long a password reset link works; how long a role change waits
    reset_link_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    role_change_days: int = Field(default=14, ge=1, le=90)
    # scheduler
    sweep_at: str = DEFAULT_SWEEP_AT
    timezone: str = DEFAULT_TIMEZONE
    dispatch_seconds: int = DEFAULT_DISPATCH_SECONDS
    # a rehearsal or training server's clock (``quorum serve`` and its scheduler):
    # the date-time (UTC) it starts at, running on from there; unset: the system clock
    clock_start: dt.datetime | None = None
    # commands: how long an idempotency key is remembered (docs/security.md)
    idempotency_key_hours: int = DEFAULT_IDEMPOTENCY_KEY_HOURS
    # the sweep (docs/notifications.md): more messages than this to one person in one
    # sweep go as one digest; a first sweep after this many days without one (or after
    # a restore) holds its messages until an officer confirms the catch-up
    digest_threshold: int = DEFAULT_DIGEST_THRESHOLD
    catchup_gap_days: int = DEFAULT_CATCHUP_GAP_DAYS
    # grants per chunk of a scheduled or `quorum sweep` sweep: each chunk is one short
    # write transaction, so commands get the database between chunks
    sweep_chunk: int = DEFAULT_SWEEP_CHUNK
    sweep_chunk_ms: int = DEFAULT_SWEEP_CHUNK_MS  # 0: chunks by QUORUM_SWEEP_CHUNK alone
    # audit trail (engine/store/auditkeys.py, engine/store/checkpoints.py): the HMAC
    # keyring file ("KEY_ID SECRET" per line, the last line the current key) and/or
    # one key "KEY_ID:SECRET" (then the current key); neither: the development key
    audit_keyring: Path | None = None
    audit_key: str | None = Field(default=None, repr=False)
    # signed checkpoints of the chain's head: where they are written, and the
    # Ed25519 private key (PEM) that signs them (unset: the development key)
    checkpoint_dir: Path = Path(DEFAULT_CHECKPOINT_DIR)
    checkpoint_key_file: Path | None = None
    # open data (docs/publishing.md): the 360Giving prefix registered for the
    # publisher, and the funder's organisation identifier and name
    giving_prefix: str = DEFAULT_GIVING_PREFIX
    funder_id: str = DEFAULT_FUNDER_ID
    funder_name: str = DEFAULT_FUNDER_NAME

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)  # no .env file, no secrets folder

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings an explicit mapping of variables gives (the process
        environment is not read). Raises :class:`SettingsError`."""
        values = {
            name[len(PREFIX) :].lower(): value
            for name, value in env.items()
            if name.upper().startswith(PREFIX)
        }
        return _build(_FromMapping, values)

    # ------------------------------------------------------------ validation
    # Every field has a "before" validator, so each refusal carries our words.

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = value if key == "smtp_password" else value.strip()
                if not value:
                    continue
            out[key] = value
        return out

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, v: str) -> str:
        if "://" not in v:
            raise ValueError(
                f"QUORUM_DATABASE_URL={v!r}: a database URL is needed, e.g. "
                "sqlite:///quorum.db or postgresql://user@host/quorum"
            )
        return v

    @field_validator("giving_prefix", mode="before")
    @classmethod
    def _giving_prefix(cls, v: str) -> str:
        value = str(v)
        if not value.startswith("360G-") or len(value) < 6 or any(c.isspace() for c in value):
            raise ValueError(
                f"QUORUM_GIVING_PREFIX={value!r}: a 360Giving prefix starts '360G-' and has no "
                "spaces, e.g. 360G-examplefunder (the one 360Giving registered for you)"
            )
        return value

    @field_validator("sqlite_synchronous", mode="before")
    @classmethod
    def _synchronous(cls, v: str) -> str:
        level = str(v).upper()
        if level not in SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"QUORUM_SQLITE_SYNCHRONOUS={level!r}: allowed values are NORMAL, FULL, EXTRA"
            )
        return level

    @field_validator("secret_key", mode="before")
    @classmethod
    def _secret_key(cls, v: str) -> str:
        if len(v) < 32:  # the value itself is never echoed
            raise ValueError(
                f"QUORUM_SECRET_KEY must be at least 32 characters (it has {len(v)}); "
                "leave it unset to use the key generated and kept in the database"
            )
        return v

    @field_validator("audit_key", mode="before")
    @classmethod
    def _audit_key(cls, v: str) -> str:
        key_id, colon, secret = str(v).partition(":")
        if not colon or not is_key_id(key_id) or len(secret) < 32:
            raise ValueError(  # the secret itself is never echoed
                f"QUORUM_AUDIT_KEY: write KEY_ID:SECRET, the id 1 to 32 letters, digits, '.', "
                f"'_' or '-' and the secret at least 32 characters (it has {len(secret)}), "
                "e.g. 2026a:<64 hex digits from 'quorum audit new-key'>"
            )
        return str(v)

    @field_validator("https_only", mode="before")
    @classmethod
    def _flag(cls, v: object) -> bool:
        if isinstance(v, bool):
            return v
        word = str(v).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"QUORUM_HTTPS_ONLY={v!r}: allowed values are 1, true, yes, on, 0, "
                         "false, no, off")  # fmt: skip

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(
                f"QUORUM_BASE_URL={v!r}: the site's address is needed, starting http:// or "
                "https://, e.g. https://grants.example.org"
            )
        return v.rstrip("/")

    @field_validator("upload_max_mb", mode="before")
    @classmethod
    def _upload_max_mb(cls, v: object) -> float:
        try:
            mb = float(str(v))
            if not 0 < mb < float("inf"):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"QUORUM_UPLOAD_MAX_MB={v!r}: a number of megabytes above 0 is needed, e.g. 10"
            ) from None
        return mb

    @field_validator("session_idle_minutes", mode="before")
    @classmethod
    def _session_idle(cls, v: object) -> int:
        return _whole("QUORUM_SESSION_IDLE_MINUTES", v, 1, MAX_SESSION_HOURS * 60,
                      "a whole number of minutes", then=f", e.g. {DEFAULT_SESSION_IDLE_MINUTES}")

    @field_validator("session_max_hours", mode="before")
    @classmethod
    def _session_max(cls, v: object) -> int:
        return _whole("QUORUM_SESSION_MAX_HOURS", v, 1, MAX_SESSION_HOURS,
                      "a whole number of hours", then=f", e.g. {DEFAULT_SESSION_MAX_HOURS}")
    @field_validator("import_max_mb", "import_max_unzipped_mb", mode="before")
    @classmethod
    def _import_mb(cls, v: object, info: ValidationInfo) -> float:
        try:
            mb = float(str(v))
            if not 0 < mb < float("inf"):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"QUORUM_{str(info.field_name).upper()}={v!r}: a number of megabytes above 0 "
                "is needed, e.g. 5"
            ) from None
        return mb

    @field_validator("import_max_rows", mode="before")
    @classmethod
    def _import_rows(cls, v: object) -> int:
        return _whole("QUORUM_IMPORT_MAX_ROWS", v, 1, None, "a whole number of rows",
                      span=" above 0", then=", e.g. 5000", lenient=True)

    @field_validator("mail", mode="before")
    @classmethod
    def _mail(cls, v: str) -> str:
        kind = str(v).lower()
        if kind not in ("file", "smtp"):
            raise ValueError(f"QUORUM_MAIL={kind!r}: allowed values are file, smtp")
        return kind

    @field_validator("mail_from", mode="before")
    @classmethod
    def _mail_from(cls, v: str) -> str:
        return check_sender(v)

    @field_validator("mail_grace_seconds", mode="before")
    @classmethod
    def _grace(cls, v: object) -> int:
        return _whole("QUORUM_MAIL_GRACE_SECONDS", v, 1, None, "a whole number of seconds")

    @field_validator("digest_threshold", mode="before")
    @classmethod
    def _digest(cls, v: object) -> int:
        return _whole("QUORUM_DIGEST_THRESHOLD", v, 1, None, "a whole number of messages",
                      then=f" (default {DEFAULT_DIGEST_THRESHOLD})")

    @field_validator("catchup_gap_days", mode="before")
    @classmethod
    def _gap(cls, v: object) -> int:
        return _whole("QUORUM_CATCHUP_GAP_DAYS", v, 1, None, "a whole number of days",
                      then=f" (default {DEFAULT_CATCHUP_GAP_DAYS})")

    @field_validator("sweep_chunk", mode="before")
    @classmethod
    def _sweep_chunk(cls, v: object) -> int:
        return _whole("QUORUM_SWEEP_CHUNK", v, 1, None, "a whole number of grants",
                      then=f" (default {DEFAULT_SWEEP_CHUNK})")

    @field_validator("sweep_chunk_ms", mode="before")
    @classmethod
    def _sweep_chunk_ms(cls, v: object) -> int:
        return _whole("QUORUM_SWEEP_CHUNK_MS", v, 0, None, "a whole number of milliseconds",
                      then=f" (default {DEFAULT_SWEEP_CHUNK_MS}; 0: by grants alone)")

    @field_validator("idempotency_key_hours", mode="before")
    @classmethod
    def _key_hours(cls, v: object) -> int:
        return _whole("QUORUM_IDEMPOTENCY_KEY_HOURS", v, 1, None, "a whole number of hours",
                      then=" (default 24)")

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _port(cls, v: object) -> int:
        return _whole("QUORUM_SMTP_PORT", v, 1, 65535, "a port number")

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _tls(cls, v: str) -> str:
        tls = str(v).lower()
        if tls not in TLS_MODES:
            raise ValueError(f"QUORUM_SMTP_TLS={tls!r}: allowed values are {', '.join(TLS_MODES)}")
        return tls

    @field_validator("smtp_timeout", mode="before")
    @classmethod
    def _timeout(cls, v: object) -> float:
        try:
            timeout = float(str(v))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 3600:
            raise ValueError(
                f"QUORUM_SMTP_TIMEOUT={v!r}: a number of seconds above 0 (at most 3600) is needed"
            )
        return timeout

    @field_validator("sweep_at", mode="before")
    @classmethod
    def _sweep_at(cls, v: str) -> str:
        hh, mm = parse_sweep_at(v)
        return f"{hh:02d}:{mm:02d}"

    @field_validator("timezone", mode="before")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return parse_timezone(v)

    @field_validator("dispatch_seconds", mode="before")
    @classmethod
    def _dispatch(cls, v: object) -> int:
        return parse_dispatch_seconds(v)

    @model_validator(mode="after")
    def _mail_settings_agree(self) -> Settings:
        if self.mail != "smtp":  # the SMTP variables are only read for smtp
            return self
        if self.smtp_host is None:
            raise ValueError(
                "QUORUM_SMTP_HOST is not set: QUORUM_MAIL=smtp needs the SMTP server's name"
            )
        if self.smtp_password and not self.smtp_user:
            raise ValueError(
                "QUORUM_SMTP_PASSWORD is set but QUORUM_SMTP_USER is not: set both, or neither"
            )
        if self.smtp_user and not self.smtp_password:
            raise ValueError(
                f"QUORUM_SMTP_USER={self.smtp_user!r} is set but QUORUM_SMTP_PASSWORD is not: "
                "set both, or neither"
            )
        if self.smtp_ca_file is not None and self.smtp_tls == "none":
            raise ValueError(
                "QUORUM_SMTP_CA_FILE is set but QUORUM_SMTP_TLS=none: it is only used with "
                "starttls or ssl"
            )
        return self


class _FromMapping(Settings):
    """Settings read only from the values given (see :meth:`Settings.from_env`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _build(cls: type[Settings], values: dict[str, Any]) -> Settings:
    """Make the object; pydantic's error list becomes one message, a line per problem."""
    try:
        made = cls(**values)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, ValueError):
                lines.append(str(cause))
            else:  # a type check of ours that has no words of its own (not expected)
                name = PREFIX + "_".join(str(p) for p in err["loc"]).upper()
                lines.append(f"{name}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("\n".join(dict.fromkeys(lines))) from None
    if type(made) is not Settings:  # validated already: hand back the one type
        made = Settings.model_construct(made.model_fields_set, **dict(made))
    return made


# ---------------------------------------------------------------- the one object

_cache: tuple[tuple[tuple[str | bytes, str | bytes], ...], Settings] | None = None
_override: Settings | None = None


_PREFIX_BYTES = PREFIX.encode()
_FIRST_BYTES = (_PREFIX_BYTES[:1], _PREFIX_BYTES[:1].lower())


def _snapshot() -> tuple[tuple[str | bytes, str | bytes], ...]:
    """The QUORUM_* variables as they are now, only to notice a change. Called on
    every get_settings() (twice a command): ``os.environ.items()`` decodes every
    variable of the process each time (measured 0.11 ms with 36 variables, a third
    of an amend_bid), so on POSIX the undecoded bytes mapping behind it is read."""
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict) and isinstance(next(iter(raw), b""), bytes):
        n = len(_PREFIX_BYTES)
        # the first letter first: most variables are not ours (no slice, no upper())
        return tuple(sorted(
            (k, v) for k, v in raw.items()
            if k[:1] in _FIRST_BYTES and k[:n].upper() == _PREFIX_BYTES
        ))  # fmt: skip
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(PREFIX)))


def get_settings() -> Settings:
    """The settings in force: an override (tests), else the process environment's
    (read once per distinct set of QUORUM_* values). Raises :class:`SettingsError`."""
    global _cache
    if _override is not None:
        return _override
    snap = _snapshot()
    if _cache is None or _cache[0] != snap:
        _cache = (snap, _build(Settings, {}))
    return _cache[1]


def reset_settings() -> None:
    """Forget the cached object: the next :func:`get_settings` reads the environment."""
    global _cache
    _cache = None


@contextmanager
def override_settings(settings: Settings | None = None, **values: Any) -> Iterator[Settings]:
    """Put ``settings`` (or the defaults with ``values`` applied, validated as
    the environment would be) in force for the block."""
    global _override
    chosen = settings if settings is not None else _build(_FromMapping, values)
    before, _override = _override, chosen
    try:
        yield chosen
    finally:
        _override = before
