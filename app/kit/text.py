"""What the service keeps of the text a client sends (every string of every request body).

A name or a note is shown again in lists, reports, spreadsheets and other systems, so what is
stored must read as what it is. Per character class (docs/security.md):

- **Normalised**: every string to Unicode NFC, so that one name is one string however it was
  typed (`é` as one code point or as `e` and a combining accent).
- **Refused** (422 at the field): the NUL and every other C0 and C1 control character but tab,
  line feed and carriage return; the bidirectional embeddings, overrides and isolates (U+202A
  to U+202E, U+2066 to U+2069), which make text display in another order than it is stored
  ("Trojan Source"); lone surrogates, which cannot be stored as UTF-8. In a name (a field
  called `name` or ending in `_name`), tab, line feed and carriage return are refused too: a
  name is one line.
- **Stripped**: zero-width characters that carry nothing visible. Everywhere: the zero-width
  space U+200B, the word joiner U+2060 and U+FEFF. In names also the zero-width joiner and
  non-joiner U+200C/U+200D (in free text they shape some scripts and emoji, so they are kept
  there). A text that was nothing but these is refused (it would store an empty value).
"""

from __future__ import annotations

import re
import unicodedata

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\n\r]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_INVISIBLE = re.compile(r"[\u200b\u2060\ufeff]")
_INVISIBLE_IN_NAMES = re.compile(r"[\u200b-\u200d\u2060\ufeff]")


def is_name(field: str | None) -> bool:
    return field is not None and (field == "name" or field.endswith("_name"))


def clean_text(value: str, *, name: bool = False) -> str:
    """The text as the service keeps it, or ValueError naming what is refused (never the
    text itself)."""
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character (\\u0000)")
    if _SURROGATES.search(value):
        raise ValueError("text must not contain unpaired surrogates")
    if _CONTROLS.search(value):
        raise ValueError("text must not contain control characters (other than tab and new line)")
    if name and _LINE_BREAKS.search(value):
        raise ValueError("a name must not contain tabs or line breaks")
    if _BIDI.search(value):
        raise ValueError(
            "text must not contain bidirectional embedding, override or isolate characters"
        )
    cleaned = (_INVISIBLE_IN_NAMES if name else _INVISIBLE).sub("", value)
    cleaned = unicodedata.normalize("NFC", cleaned)
    if cleaned != value:
        cleaned = cleaned.strip()
        if value.strip() and not cleaned:
            raise ValueError("text must not be only invisible characters")
    return cleaned
