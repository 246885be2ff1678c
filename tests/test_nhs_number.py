"""NHS number validation (DESIGN.md section 3), held to an independent Modulus 11 written here
from the published algorithm, and through the API where a sender meets it."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from app.kit.nhs_number import InvalidNhsNumber, normalise_nhs_number
from tests.factories import idem, screening_body
from tests.factories import test_nhs_number as make_nhs_number

ASCII_DIGITS = "0123456789"


def modulus_11_valid(number: str) -> bool:
    """The NHS Modulus 11 check, written from the specification and nothing else: weights
    10 down to 2 on the first nine digits; check = 11 - (sum mod 11); 11 means 0; 10 means the
    number is invalid; otherwise the tenth digit must equal the check."""
    digits = [ord(character) - ord("0") for character in number]
    assert len(digits) == 10 and all(0 <= digit <= 9 for digit in digits)
    total = sum(digit * weight for digit, weight in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return False
    return check == digits[9]


def independent_check(first_nine: str) -> int:
    """The check for nine digits (10 meaning 'no valid number starts with these')."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else check


def accepted(raw: str) -> str | None:
    try:
        return normalise_nhs_number(raw)
    except InvalidNhsNumber:
        return None


ten_digits = st.text(alphabet=ASCII_DIGITS, min_size=10, max_size=10)
nine_digits = st.text(alphabet=ASCII_DIGITS, min_size=9, max_size=9)


@st.composite
def valid_numbers(draw: st.DrawFn) -> str:
    first_nine = draw(nine_digits.filter(lambda s: independent_check(s) != 10))
    number = first_nine + str(independent_check(first_nine))
    assume(len(set(number)) > 1)
    return number


@st.composite
def check_ten_numbers(draw: st.DrawFn) -> str:
    """Nine digits whose check computes to 10, then any last digit: never a valid number."""
    first_eight = draw(st.text(alphabet=ASCII_DIGITS, min_size=8, max_size=8))
    partial = sum(int(d) * w for d, w in zip(first_eight, range(10, 2, -1), strict=True))
    # The ninth digit has weight 2; pick it so that the sum is 1 mod 11 (check = 10), when
    # one exists (2 * d covers every residue as d runs 0..9 except one).
    ninth = [d for d in range(10) if (partial + 2 * d) % 11 == 1]
    assume(ninth)
    return first_eight + str(ninth[0]) + draw(st.sampled_from(ASCII_DIGITS))


# --- the algorithm ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["9434765919", "9434765870"])
def test_the_design_examples_are_valid(number: str) -> None:
    assert modulus_11_valid(number)
    assert normalise_nhs_number(number) == number


@given(ten_digits)
@example("9434765919")
@example("9434765918")
@example("0000000000")
@example("9990000000")
def test_ten_digits_are_accepted_exactly_when_modulus_11_says_so_and_not_repeated(
    number: str,
) -> None:
    expected = modulus_11_valid(number) and len(set(number)) > 1
    result = accepted(number)
    assert (result is not None) == expected
    if expected:
        assert result == number


@given(valid_numbers())
def test_every_valid_number_comes_back_as_its_ten_digits(number: str) -> None:
    assert normalise_nhs_number(number) == number


@given(valid_numbers(), st.integers(min_value=1, max_value=9))
def test_changing_one_digit_of_a_valid_number_is_caught(number: str, bump: int) -> None:
    """Modulus 11 catches every single-digit error: no other tenth digit fits."""
    wrong = number[:9] + str((int(number[9]) + bump) % 10)
    assert accepted(wrong) is None


@pytest.mark.parametrize("raw", ["943 476 5919", "943-476-5919", " 9434765919 ", "943 476-5919"])
def test_spaces_and_dashes_between_digits_are_accepted(raw: str) -> None:
    assert normalise_nhs_number(raw) == "9434765919"


@given(valid_numbers(), st.data())
def test_separators_anywhere_between_digits_are_dropped(number: str, data: st.DataObject) -> None:
    separators = data.draw(
        st.lists(st.sampled_from(["", " ", "-", "  ", " - "]), min_size=9, max_size=9)
    )
    raw = "".join(d + s for d, s in zip(number, [*separators, ""], strict=True))
    assert normalise_nhs_number(raw) == number


# --- junk --------------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", list(ASCII_DIGITS))
def test_one_digit_repeated_is_junk_even_though_it_passes_the_checksum(digit: str) -> None:
    number = digit * 10
    assert modulus_11_valid(number)  # the reason they need a rule of their own
    assert accepted(number) is None
    assert accepted(f"{digit * 3} {digit * 3} {digit * 4}") is None


@pytest.mark.parametrize(
    "number", ["9990000000", "9990000009", "9990000140", "9990000147", "9990000283"]
)
def test_numbers_whose_check_computes_to_10_are_rejected_whatever_the_last_digit(
    number: str,
) -> None:
    assert independent_check(number[:9]) == 10
    assert accepted(number) is None


@given(check_ten_numbers())
def test_generated_check_10_numbers_are_rejected(number: str) -> None:
    assert independent_check(number[:9]) == 10
    assert accepted(number) is None


@pytest.mark.parametrize(
    "raw",
    ["", "943476591", "94347659190", "09434765919", "943 476 591", "94347659199"],
)
def test_wrong_lengths_are_rejected(raw: str) -> None:
    assert accepted(raw) is None


@given(st.text(alphabet=ASCII_DIGITS, max_size=30).filter(lambda s: len(s) != 10))
def test_any_other_number_of_digits_is_rejected(raw: str) -> None:
    assert accepted(raw) is None


@pytest.mark.parametrize("raw", ["943476591A", "A434765919", "9434765919x", "94347B5919", "abc"])
def test_letters_are_rejected(raw: str) -> None:
    assert accepted(raw) is None


@given(valid_numbers(), st.integers(0, 9), st.characters(categories=["L"]))
def test_a_letter_in_place_of_any_digit_is_rejected(number: str, at: int, letter: str) -> None:
    assert accepted(number[:at] + letter + number[at + 1 :]) is None


ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in "9434765919")
FULLWIDTH = "".join(chr(0xFF10 + int(d)) for d in "9434765919")
DEVANAGARI = "".join(chr(0x0966 + int(d)) for d in "9434765919")


@pytest.mark.parametrize("raw", [ARABIC_INDIC, FULLWIDTH, DEVANAGARI, "94347659¹⁹"])
def test_non_ascii_digits_are_rejected(raw: str) -> None:
    """They are digits to Python's str.isdigit, and the same number to a reader, but not what
    an NHS number is made of."""
    assert accepted(raw) is None


@given(
    valid_numbers(),
    st.integers(0, 9),
    st.characters(categories=["Nd"]).filter(lambda c: not c.isascii()),
)
def test_a_non_ascii_digit_anywhere_is_rejected(number: str, at: int, digit: str) -> None:
    assert accepted(number[:at] + digit + number[at + 1 :]) is None


# --- through the API ----------------------------------------------------------------------------


def assert_not_echoed(response: httpx.Response, *values: str) -> None:
    """Neither in the raw body nor in the decoded JSON (which may have escaped non-ASCII)."""
    decoded = json.dumps(response.json(), ensure_ascii=False)
    for value in values:
        assert value not in response.text
        assert value not in decoded


BAD_NUMBERS = [
    "9434765918",  # wrong check digit
    "943 476 5918",  # the same, spaced
    "9990000000",  # check computes to 10
    "4444444444",  # one digit repeated
    "943476591A",
    ARABIC_INDIC,
]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
async def test_a_screening_with_a_bad_nhs_number_is_refused_without_echoing_it(
    api, bad: str
) -> None:
    body = screening_body(death={"nhs_number": bad})
    response = await api.post("/v1/screenings", json=body, headers=idem())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [e["pointer"] for e in problem["errors"]] == ["/death/nhs_number"]
    assert_not_echoed(response, bad, "".join(c for c in bad if c not in " -"))
    source = body["death"]
    found = await api.get(
        "/v1/deaths",
        params={
            "source_system": source["source_system"],
            "source_reference": source["source_reference"],
        },
    )
    assert found.status_code == 200
    assert found.json()["items"] == []


@pytest.mark.parametrize("bad", ["9434765918", "1111111111", "9990000005", "94347", "QQQQQQQQQQ"])
async def test_listing_deaths_by_a_bad_nhs_number_is_a_422(api, bad: str) -> None:
    response = await api.get("/v1/deaths", params={"nhs_number": bad})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in response.json()["errors"]] == ["query:/nhs_number"]
    assert_not_echoed(response, bad)


@pytest.mark.parametrize("separator", [" ", "-"])
async def test_a_formatted_nhs_number_is_stored_as_ten_digits(api, separator: str) -> None:
    number = make_nhs_number()
    formatted = separator.join([number[:3], number[3:6], number[6:]])
    response = await api.post(
        "/v1/screenings", json=screening_body(death={"nhs_number": formatted}), headers=idem()
    )
    assert response.status_code == 201, response.text
    assert response.json()["death"]["nhs_number"] == number
    death_id = response.json()["death_id"]

    detail = await api.get(f"/v1/deaths/{death_id}")
    assert detail.json()["nhs_number"] == number

    # Found by the number in either form.
    for query in (number, formatted):
        listed = await api.get("/v1/deaths", params={"nhs_number": query})
        assert listed.status_code == 200, listed.text
        assert death_id in [d["id"] for d in listed.json()["items"]]
