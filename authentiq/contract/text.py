"""Text from clients: no control characters.

A NUL in a form field is refused by PostgreSQL ("A string literal cannot contain NUL"), which
surfaced as a 500; other control characters (escape sequences, backspaces) have no business in
a brand, a reference or a reviewer's note and can spoof what logs and terminals show. Every text
field a client sends goes through :func:`check_text`: tab, newline and carriage return are kept
where a field is multi-line, everything else in Unicode's ``Cc`` category is a 422.
"""

from __future__ import annotations

import unicodedata

from authentiq.errors import InvalidField

MULTILINE_OK = frozenset("\t\n\r")


def check_text(value: str, field: str, max_length: int | None = None, *,
               multiline: bool = False) -> str:
    """``value`` unchanged, or 422 ``invalid-field`` naming ``field``."""
    allowed = MULTILINE_OK if multiline else frozenset()
    bad = next((c for c in value if unicodedata.category(c) == "Cc" and c not in allowed), None)
    if bad is not None:
        raise InvalidField(f"field {field!r} contains a control character (U+{ord(bad):04X})",
                           field=field)
    if max_length is not None and len(value) > max_length:
        raise InvalidField(f"field {field!r} is longer than {max_length} characters", field=field)
    return value
