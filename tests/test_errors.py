"""How messages show user input, and the UTF-8 checks at the edges (vault/errors.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import QUOTE_LIMIT, InvalidInput, check_utf8, decode_utf8, printable, quoted

# Text as argv, a file name or a JSON escape can spell it: control characters, lone
# surrogates (bytes that were not UTF-8, decoded with surrogateescape), anything.
any_text = st.one_of(
    st.text(),
    st.binary().map(os.fsdecode),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Zl", "Zp", "Cf"])),
)


@given(any_text)
def test_printable_is_one_printable_line(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()  # no line break, no escape sequence, no lone surrogate
    assert printable(shown) == shown  # escaping twice changes nothing


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=["C", "Z"])))
def test_printable_leaves_printable_text_alone(text: str) -> None:
    assert printable(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("no\rvault.db", "no\\rvault.db"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("b\udc80d", "b\\udc80d"),
        ("line\u2028break", "line\\u2028break"),
        ("tab\there", "tab\\there"),
    ],
)
def test_printable_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_shows_paths_whole() -> None:
    long_path = "/srv/" + "d" * 300 + "/vault.db"
    assert printable(long_path) == long_path


@given(any_text)
def test_quoted_is_printable_and_never_long_input_whole(text: str) -> None:
    shown = quoted(text)
    assert shown.isprintable()
    if len(text) > QUOTE_LIMIT:
        assert text not in shown
        assert shown.endswith(f"({len(text)} characters)")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("binance-main", '"binance-main"'),
        ("a\rb", '"a\\rb"'),  # short: whole, escaped
        ("\udc80", '"\\udc80"'),
        ("x" * 40, '"xxxxxx..." (40 characters)'),
        ("\x1b[2J" + "x" * 40, '"\\x1b[2Jxx..." (44 characters)'),
    ],
)
def test_quoted(value: str, shown: str) -> None:
    assert quoted(value) == shown


@given(any_text)
def test_check_utf8_accepts_exactly_what_encodes(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidInput, match=r"^the thing is not valid UTF-8 text"):
            check_utf8(text, "the thing")
    else:
        assert check_utf8(text, "the thing") == text


def test_check_utf8_says_where_not_what() -> None:
    with pytest.raises(InvalidInput) as info:
        check_utf8("hunter2\udc80", "the passphrase")
    assert str(info.value) == "the passphrase is not valid UTF-8 text (at character 8)"


@given(st.binary())
def test_decode_utf8_is_strict(data: bytes) -> None:
    try:
        expected = data.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(InvalidInput, match=r"^the JSON is not valid UTF-8 text \(at byte"):
            decode_utf8(data, "the JSON")
    else:
        assert decode_utf8(data, "the JSON") == expected


@pytest.mark.parametrize(
    ("data", "byte"),
    [
        (b"\xff", 1),
        (b'{"secret": "\xe9t\xe9"}', 13),
        (b"\xed\xa0\x80", 1),  # a surrogate encoded as UTF-8 ("surrogatepass"): not UTF-8
        (b"ok\xc3", 3),  # cut in the middle of a character
    ],
)
def test_decode_utf8_says_where(data: bytes, byte: int) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_utf8(data, "the JSON")
    assert str(info.value) == f"the JSON is not valid UTF-8 text (at byte {byte})"
