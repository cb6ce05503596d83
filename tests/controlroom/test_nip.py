"""NIP parsing: hand-made vectors per rule and boundary, and "only InvalidNip, ever"."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlroom.attendance.nip import InvalidNip, Nip, format_nip, is_nip, parse_nip

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19850412 201001 1 003",
         Nip("198504122010011003", date(1985, 4, 12), date(2010, 1, 1), "L", 3)),
        ("198504122010011003",
         Nip("198504122010011003", date(1985, 4, 12), date(2010, 1, 1), "L", 3)),
        ("  19960229 202003 2 999 ",  # leap-year birthday, female, last sequence number
         Nip("199602292020032999", date(1996, 2, 29), date(2020, 3, 1), "P", 999)),
        # Birth year 1940 is the first plausible one; 18 exactly on the CPNS start day.
        ("19400101 195801 1 001",
         Nip("194001011958011001", date(1940, 1, 1), date(1958, 1, 1), "L", 1)),
        # Age exactly 18 on the first day of the CPNS month.
        ("20001101 201811 2 001",
         Nip("200011012018112001", date(2000, 11, 1), date(2018, 11, 1), "P", 1)),
        # Born 29 February: 18 on 1 March of a common year.
        ("20000229 201803 1 001",
         Nip("200002292018031001", date(2000, 2, 29), date(2018, 3, 1), "L", 1)),
        # CPNS start in the current month is not in the future.
        ("19900101 202612 1 001",
         Nip("199001012026121001", date(1990, 1, 1), date(2026, 12, 1), "L", 1)),
    ],
)
def test_valid_nips(text: str, expected: Nip) -> None:
    assert parse_nip(text, today=TODAY) == expected
    assert is_nip(text, today=TODAY)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "length"),
        ("19850412 201001 1 00", "length"),  # 17 digits
        ("1985041220100110031", "length"),  # 19 digits
        ("19850412-201001-1-003", "length"),  # only spaces separate
        ("19850412\t201001 1 003", "length"),
        ("١٩٨٥٠٤١٢٢٠١٠٠١١٠٠٣", "length"),  # Arabic-Indic digits are digits to str.isdigit
        ("１９８５０４１２２０１００１１００３", "length"),  # full-width digits
        ("19850412 2010O1 1 003", "length"),  # letter O for zero
        ("19850230 201001 1 003", "birth_date"),  # 30 February
        ("19970229 201901 1 003", "birth_date"),  # 29 February of a common year
        ("19851301 201001 1 003", "birth_date"),
        ("19850400 201001 1 003", "birth_date"),
        ("00000000 201001 1 003", "birth_date"),
        ("19391231 196001 1 001", "birth_year"),
        ("19850412 201000 1 003", "cpns_month"),
        ("19850412 201013 1 003", "cpns_month"),
        ("19850412 202701 1 003", "cpns_future"),  # next month
        ("19850412 999912 1 003", "cpns_future"),
        ("20001102 201811 1 001", "age"),  # 18 the day after the CPNS start
        ("20000229 201802 1 001", "age"),  # leap-day birth: still 17 in February 2018
        ("19850412 198001 1 001", "age"),  # appointed before birth
        ("19850412 000001 1 001", "age"),  # year 0000, which date() refuses
        ("19850412 201001 0 003", "gender"),
        ("19850412 201001 3 003", "gender"),
        ("19850412 201001 9 003", "gender"),
        ("19850412 201001 1 000", "sequence"),
        # Several rules broken: the first in the order of the digits is named.
        ("19391231 000000 0 000", "birth_year"),
        ("19850412 201013 3 000", "cpns_month"),
    ],
)
def test_invalid_nips_name_the_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidNip) as err:
        parse_nip(text, today=TODAY)
    assert err.value.rule == rule
    assert isinstance(err.value, ValueError)
    assert str(err.value).startswith("NIP")
    assert "NIP" in err.value.text_id and err.value.text_id != str(err.value)
    assert not is_nip(text, today=TODAY)


def test_messages_name_what_is_wrong() -> None:
    with pytest.raises(InvalidNip, match="birth date 19970229") as err:
        parse_nip("19970229 201901 1 003", today=TODAY)
    assert "Tanggal lahir" in err.value.text_id
    with pytest.raises(InvalidNip, match="would be 17 at CPNS start 2018-11") as err:
        parse_nip("20001102 201811 1 001", today=TODAY)
    assert "berusia 17 tahun" in err.value.text_id
    with pytest.raises(InvalidNip, match="after the current month 2026-12"):
        parse_nip("19850412 202701 1 003", today=TODAY)


def test_cpns_future_follows_today() -> None:
    assert not is_nip("19850412 202701 1 003", today=date(2026, 12, 31))
    assert is_nip("19850412 202701 1 003", today=date(2027, 1, 1))


def test_non_text_is_an_invalid_nip() -> None:
    with pytest.raises(InvalidNip):
        parse_nip(198504122010011003, today=TODAY)  # type: ignore[arg-type]


def test_format_nip() -> None:
    nip = parse_nip("198504122010011003", today=TODAY)
    assert format_nip(nip) == "19850412 201001 1 003"
    assert format_nip("198504122010011003") == "19850412 201001 1 003"
    assert format_nip("19850412 201001 1 003") == "19850412 201001 1 003"
    with pytest.raises(InvalidNip):
        format_nip("1985")


@st.composite
def valid_nips(draw: st.DrawFn) -> str:
    born = draw(st.dates(date(1940, 1, 1), date(2008, 11, 1)))
    earliest = date(born.year + 18, born.month, 1)
    year, month = draw(st.tuples(st.integers(earliest.year, TODAY.year), st.integers(1, 12)))
    if (year, month) <= (earliest.year, earliest.month) or (year, month) > (TODAY.year,
                                                                            TODAY.month):
        year, month = TODAY.year, TODAY.month
    gender = draw(st.sampled_from("12"))
    sequence = draw(st.integers(1, 999))
    return f"{born:%Y%m%d}{year:04d}{month:02d}{gender}{sequence:03d}"


@given(st.text())
def test_arbitrary_text_raises_only_invalid_nip(text: str) -> None:
    try:
        parse_nip(text, today=TODAY)
    except InvalidNip:
        pass


@given(st.from_regex(r"\A[0-9 ]{14,24}\Z"))
def test_digit_strings_raise_only_invalid_nip(text: str) -> None:
    try:
        nip = parse_nip(text, today=TODAY)
    except InvalidNip:
        return
    assert len(nip.nip) == 18 and nip.nip == text.replace(" ", "")


@given(valid_nips())
def test_valid_nips_round_trip_through_the_written_form(text: str) -> None:
    nip = parse_nip(text, today=TODAY)
    assert parse_nip(format_nip(nip), today=TODAY) == nip
    assert format_nip(nip).replace(" ", "") == text
