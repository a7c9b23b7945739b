"""What the delivery log keeps of a failed answer (issue 21): one short printable line."""

from __future__ import annotations

from services.notify.domain.excerpt import EXCERPT_CHARS, READ_BYTES, excerpt


def test_a_short_answer_is_kept_as_it_is() -> None:
    assert excerpt(b'{"error": "invalid signature"}') == '{"error": "invalid signature"}'
    assert excerpt("签名无效".encode()) == "签名无效"
    assert excerpt(b"") == ""


def test_a_long_answer_is_cut_to_the_limit_and_says_so() -> None:
    cut = excerpt(b"x" * 10_000)
    assert len(cut) == EXCERPT_CHARS and cut.endswith("…")
    assert excerpt(b"y" * EXCERPT_CHARS) == "y" * EXCERPT_CHARS
    assert len(excerpt("长" * 1000)) == EXCERPT_CHARS


def test_control_and_format_characters_become_one_line_of_printable_text() -> None:
    raw = b"line one\r\nline two\n\x1b[31mred\x1b[0m\tTAB\x00NUL\x7fDEL"
    assert excerpt(raw) == "line one line two [31mred [0m TAB NUL DEL"
    # Bidirectional override, zero-width joiner, line and paragraph separators, no-break space.
    assert excerpt("a\u202eb\u200dc\u2028d\u2029e\u00a0f") == "a b c d e f"
    assert "\n" not in excerpt(b"\n" * 5000) and excerpt(b"\n" * 5000) == ""


def test_bytes_that_are_not_utf8_are_replaced_not_raised() -> None:
    assert excerpt(b"bad \xff\xfe bytes") == "bad \ufffd\ufffd bytes"


def test_enough_bytes_are_read_for_a_full_excerpt_of_four_byte_characters() -> None:
    assert READ_BYTES >= 4 * EXCERPT_CHARS
    assert len(excerpt(("😀" * 1000).encode()[:READ_BYTES])) == EXCERPT_CHARS
