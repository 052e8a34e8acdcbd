"""Receipt codes: what a villager keeps to find their opinion again, on the web or at a kiosk.

A code is 25 random decimal digits (83 bits, beyond guessing), shown in five groups of five so it
can be read aloud over the phone or copied from a slip: 40723-11958-60042-87315-29460. Digits,
because every villager reads them aloud the same way; no letters to confuse (O/0, l/1).

Only a hash of the code is stored: whoever reads the database cannot act as the villager, and a
lost code cannot be shown again, only replaced by a new one (`opinion receipt ID`), which makes
the old one worthless.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata

from consultflow.domain.errors import ValidationError

DIGITS = 25
GROUP = 5
ENTROPY_BITS = 83  # log2(10**25) = 83.05

_SEPARATORS = " -_.\u3000\u2014\u2013"


def new_receipt_code() -> str:
    """A fresh code, grouped for reading aloud."""
    return grouped(f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}")


def grouped(code: str) -> str:
    """A code as it is printed and read aloud: five groups of five digits.

    Raises:
        ValidationError: the code is not 25 digits.
    """
    digits = normalised(code)
    return "-".join(digits[i : i + GROUP] for i in range(0, DIGITS, GROUP))


def normalised(code: str) -> str:
    """The code's 25 digits, however it was typed (spaces, dashes, full-width digits).

    Raises:
        ValidationError: anything but 25 digits and separators.
    """
    folded = unicodedata.normalize("NFKC", code or "")
    digits = "".join(ch for ch in folded if ch not in _SEPARATORS)
    if len(digits) != DIGITS or not digits.isascii() or not digits.isdigit():
        msg = f"a receipt code is {DIGITS} digits (spaces and dashes allowed), like 40723-11958-60042-87315-29460"
        raise ValidationError(msg)
    return digits


def receipt_hash(code: str) -> str:
    """What the database keeps of a code: its SHA-256, hex (the code holds 83 random bits, so no salt is needed).

    Raises:
        ValidationError: the code is not 25 digits.
    """
    return hashlib.sha256(b"consultflow-receipt:" + normalised(code).encode("ascii")).hexdigest()
