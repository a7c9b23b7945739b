"""What a delivery's log keeps of a receiver's failed answer (issue 21).

The log (``last_error`` in ``GET /v1/deliveries``) is read by whoever manages subscriptions,
so it is not a window onto what answered: the status code, and a short one-line excerpt of
the body for a non-2xx answer only. 200 characters hold a receiver's own error message
("invalid signature", a problem document's title and detail) and little else; control and
format characters (line breaks, escape sequences, bidirectional overrides) are replaced by
spaces and runs of white space folded, so the excerpt cannot forge log lines or rewrite a
terminal or page that shows it. Only ``READ_BYTES`` of the body are read at all, so a huge
or endless answer costs notify nothing.
"""

from __future__ import annotations

import unicodedata

EXCERPT_CHARS = 200
# Enough bytes for EXCERPT_CHARS characters of UTF-8 (up to 4 bytes each) plus white space.
READ_BYTES = 1024


def excerpt(raw: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` printable characters of ``raw`` on one line, "…" ending a cut."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    printable = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
