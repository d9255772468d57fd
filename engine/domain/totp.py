"""Time-based one-time codes (TOTP, RFC 6238) for the second factor.

Wraps ``pyotp`` (2.x). The traps of the library, and the line that handles each:

- ``TOTP.verify`` says yes or no but not *which* time step matched, so it
  cannot stop a code being used twice within its window: :func:`check` tries
  the steps itself and returns the step, which the caller stores
  (``second_factor.last_step``) and refuses at or below next time.
- ``verify``/``at`` read ``time.time()`` unless given a time: every call here
  passes the instant from the one injectable clock (``for_time=``).
- ``at`` compares nothing; codes are compared with ``hmac.compare_digest``.
- A code typed with spaces ("123 456") is accepted; anything not six digits
  is refused before any comparison.
"""

from __future__ import annotations

import datetime as dt
import hmac

import pyotp

ISSUER = "Quorum"
DIGITS = 6
INTERVAL = 30  # seconds per step
WINDOW = 1  # steps either side accepted (clock drift between phone and server)


class CodeRefused(ValueError):
    """Why a code was not accepted (the message is shown to the person)."""


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code, or typed)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def step_of(now: dt.datetime) -> int:
    return int(now.timestamp()) // INTERVAL


def code_at(secret: str, now: dt.datetime) -> str:
    """The code for ``now`` (tests, and nothing else, make codes)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).at(now)


def check(secret: str, code: str, now: dt.datetime, last_step: int) -> int:
    """The time step ``code`` belongs to (within ``WINDOW`` steps of ``now``),
    if it is later than ``last_step``; else :class:`CodeRefused` saying why."""
    typed = "".join(str(code).split())
    if len(typed) != DIGITS or not typed.isdigit():
        raise CodeRefused(f"is not a {DIGITS}-digit code from your authenticator app")
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    here = step_of(now)
    for step in range(here - WINDOW, here + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * INTERVAL), typed):
            if step <= last_step:
                raise CodeRefused(
                    "this code was already used; wait for the next code from your "
                    "authenticator app"
                )
            return step
    raise CodeRefused("is wrong or out of date; type the code your authenticator app shows now")
