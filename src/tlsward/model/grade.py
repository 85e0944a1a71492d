"""A grade in the style of the SSL Labs Server Rating Guide (revision 2009r), with every reason shown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Grade:
    """``letter`` is A+, A, A-, B, C, D, E, F, T (trust problems) or M (name mismatch).

    ``caps`` say why the letter is lower than the score alone would give; ``warnings`` say why it is not
    A+ (an A with warnings is A-). Both are plain sentences an on-call engineer can act on."""

    letter: str
    score: int                     # 0-100: 30% protocol + 30% key exchange + 40% cipher strength
    protocol_score: int
    key_exchange_score: int
    cipher_score: int
    caps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    letter_without_trust: str = ""  # for T and M: the grade the configuration would get if trusted
