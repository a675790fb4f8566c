"""JSONPath bracket notation: quoted names with escapes and quotes, as Jayway reads them (issue 15).

AWS reads JSONPath with Jayway JsonPath. A quoted name in brackets runs up to the first
unescaped quote of the kind that opened it (the other kind is an ordinary character), then
Jayway's ``unescape`` applies (``\\'``, ``\\"``, ``\\\\``, ``\\uXXXX``, ...). After a single ``.``
Jayway reads the next token afresh, so ``.`` may precede a bracket: the AWS guide's own example
of a name that needs brackets is ``$.abc.['def ghi']`` ("Using JSONPath paths"). One bracket
holds names of one quote kind only: Jayway closes names on the opening quote alone, so in
``['a',"b"]`` the second name is never read and the comma is left empty (an error).
"""

from __future__ import annotations

from typing import Any

import pytest

from runtime.errors import StatesError
from runtime.lang.paths import Path, PathNotFound, PathSyntaxError, apply_result_path

DOC: dict[str, Any] = {
    "a'b": 1,
    'a"b': 2,
    "a.b": 3,
    "a b": 4,
    "\\": 5,
    "é": 6,
    "x]y": 7,
    "a,b": 8,
    "'": 9,
    "😀": 10,
    "abc": {"def ghi": 11, "q'r": 12},
    "list": [13, 14],
}

# (path text as it stands in the definition's JSON string, after JSON decoding; value read)
READS = [
    (r"$['a\'b']", 1),  # an escaped quote of the opening kind
    (r'$["a\"b"]', 2),
    (r"""$['a"b']""", 2),  # the other quote kind is an ordinary character
    (r"""$["a'b"]""", 1),
    (r"$['a.b']", 3),  # '.' inside quotes is part of the name
    (r"$['a b']", 4),
    (r"$['\\']", 5),  # an escaped backslash
    (r"$['\u00e9']", 6),  # a unicode escape
    (r"$['\ud83d\ude00']", 10),  # a surrogate pair written as two escapes is one character
    (r"$['x]y']", 7),  # ']' inside quotes does not close the bracket
    (r"$['a,b']", 8),  # ',' inside quotes does not separate names
    (r"$['\'']", 9),
    (r"$[ 'a b' ]", 4),  # blanks around the quoted name
    (r"$['abc']['def ghi']", 11),
    (r"$.abc['def ghi']", 11),
    (r"$.abc.['def ghi']", 11),  # the AWS guide's example: '.' before a bracket
    (r'$.abc.["q\'r"]', 12),
    (r"$.abc.['q\'r']", 12),
    (r"$.['abc'].['def ghi']", 11),
    (r"$.list.[1]", 14),  # '.' before an index bracket too
]


@pytest.mark.parametrize(("text", "expected"), READS)
def test_bracket_names_read_as_jayway_reads_them(text: str, expected: Any) -> None:
    path = Path.compile(text)
    assert path.evaluate(DOC) == expected
    assert path.is_reference  # one quoted name per bracket: still a Reference Path
    assert path.is_definite


def test_several_names_in_one_bracket_share_the_opening_quote() -> None:
    assert Path.compile(r"$['a.b','a b']").evaluate(DOC) == {"a.b": 3, "a b": 4}
    assert Path.compile(r'$["a.b","a b"]').evaluate(DOC) == {"a.b": 3, "a b": 4}


@pytest.mark.parametrize(
    "text",
    [
        r"""$['a.b',"a b"]""",  # Jayway never reads "a b": the comma is left empty
        r"$['a b'",  # unterminated bracket
        r"$['a b]",  # unterminated name
        r"$['a' 'b']",  # names not separated by a comma
        r"$['\u00zz']",  # \u followed by four characters that are not hex digits
        r"$.abc.",  # a path must not end with '.'
        r"$.a b",  # blanks need bracket notation
    ],
)
def test_malformed_bracket_forms_are_refused(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        Path.compile(text)


def test_a_missing_bracket_name_is_named_unescaped_in_jayway_detail() -> None:
    """Jayway writes the fragment of a missing name between the path's quotes, unescaped."""
    with pytest.raises(PathNotFound) as caught:
        Path.compile(r"$.abc.['no\'pe']").evaluate(DOC)
    assert caught.value.detail == "No results for path: $['abc']['no'pe']"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"$['new key']", {"k": 1, "new key": 0}),
        (r"$.['new key']", {"k": 1, "new key": 0}),
        (r"$.x.['a\'b'].['c.d']", {"k": 1, "x": {"a'b": {"c.d": 0}}}),
        (r'$["\\"]', {"k": 1, "\\": 0}),
    ],
)
def test_result_path_takes_bracket_names_as_a_reference_path(text: str, expected: Any) -> None:
    """ResultPath is a Reference Path: bracket names, escapes and '.[' allowed; the missing
    objects on the way are created."""
    assert apply_result_path(Path.compile(text), {"k": 1}, 0) == expected


def test_result_path_through_a_non_object_fails_with_the_path_as_written() -> None:
    with pytest.raises(StatesError, match=r"Unable to apply ReferencePath \$\.k\.\['a b'\]"):
        apply_result_path(Path.compile(r"$.k.['a b']"), {"k": 1}, 0)
