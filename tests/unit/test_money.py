import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.domain.errors import ValidationError
from engine.domain.money import MAX_PENCE, MoneyError, format_pence, parse_pounds


@pytest.mark.parametrize(
    ("text", "pence"),
    [
        ("100,000", 10_000_000),
        ("£100,000", 10_000_000),
        ("81,900", 8_190_000),
        ("7,600", 760_000),
        ("1234.56", 123_456),
        ("£1.5m", 150_000_000),
        ("10m", 1_000_000_000),
        ("250k", 25_000_000),
        (" 95,000 ", 9_500_000),
        ("£1.5M", 150_000_000),
        ("40K", 4_000_000),
        ("£ 5", 500),
        ("0", 0),
        ("£0.01", 1),
        ("12.5", 1_250),
        ("£2,103,290.07", 210_329_007),
        ("1000000", 100_000_000),
        ("007", 700),
        ("1.2345k", 123_450),
        ("0.00001k", 1),
        ("2.13741600m", 213_741_600),
        ("\u00a0100\t", 10_000),
    ],
)
def test_reads_amounts_as_people_write_them(text, pence):
    assert parse_pounds(text) == pence


def test_is_exact_up_to_the_maximum_and_refuses_above_it():
    # the most Quorum takes is £1bn (issue 11); exact to the penny up to it
    assert parse_pounds("999,999,999.99") == 99_999_999_999
    assert parse_pounds("£1,000,000,000.00") == MAX_PENCE
    # far beyond float precision: refused by name, never misread (it was a 500)
    for text in ("123,456,789,012,345,678,901.23", "9007199254740993", "1,000,000,000.01"):
        with pytest.raises(MoneyError, match=r"^amount: .* is more than £1,000,000,000"):
            parse_pounds(text)


@pytest.mark.parametrize(
    "text",
    [
        "12,34x",
        "12,34",  # not grouped in threes: maybe a European decimal, so not guessed
        "1,0000",
        ",100",
        "100,",
        "1,00,000",
        "abc",
        "£",
        "k",
        "1.5.5",
        ".5",
        "100.",
        "1e5",
        "nan",
        "Infinity",
        "100 000",
        "100£",
        "£1.5 m",
        "1.5bn",
        "+100",
        "1,5m",
        "\u0661\u0662\u0663",  # Arabic-Indic digits
        "１００",  # full-width digits
        "£100,000 per annum",
    ],
)
def test_refuses_unreadable_text_naming_field_and_text(text):
    with pytest.raises(MoneyError) as caught:
        parse_pounds(text, field="grant_requested")
    message = str(caught.value)
    assert message.startswith(f"grant_requested: {text!r} ")
    assert "write e.g. 100,000 or £1.5m" in message


def test_message_matches_house_style_exactly():
    with pytest.raises(MoneyError) as caught:
        parse_pounds("12,34x", field="grant_requested")
    assert str(caught.value) == (
        "grant_requested: '12,34x' is not an amount in pounds (write e.g. 100,000 or £1.5m)"
    )


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_refuses_empty_text(text):
    with pytest.raises(MoneyError, match="is empty"):
        parse_pounds(text)


@pytest.mark.parametrize("text", ["-5", "-£5", "£-5", "\u22125", " -100,000 ", "(5,000)", "-0"])
def test_refuses_negative_amounts(text):
    with pytest.raises(MoneyError, match="is negative"):
        parse_pounds(text)


@pytest.mark.parametrize("text", ["1.234", "£0.001", "1.234567891m", "0.000001k", "100.005"])
def test_refuses_fractional_pence(text):
    with pytest.raises(MoneyError, match="fractions of a penny"):
        parse_pounds(text)


def test_trailing_zeros_are_not_fractional_pence():
    assert parse_pounds("1.2300") == 123
    assert parse_pounds("1.500000m") == 150_000_000


def test_refuses_absurdly_long_numbers():
    with pytest.raises(MoneyError, match="too large"):
        parse_pounds("9" * 31)


@pytest.mark.parametrize("value", [None, 100, 1.5, b"100"])
def test_refuses_non_text(value):
    with pytest.raises(MoneyError, match="is not an amount in pounds"):
        parse_pounds(value)


def test_default_field_name_is_amount():
    with pytest.raises(MoneyError, match=r"^amount: 'x' "):
        parse_pounds("x")


def test_money_error_is_a_value_error_and_a_validation_error_with_field():
    with pytest.raises(MoneyError) as caught:
        parse_pounds("x", field="grant_requested")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == "grant_requested"
    assert caught.value.to_dict()["field"] == "grant_requested"


@pytest.mark.parametrize(
    ("pence", "text"),
    [
        (210_329_000, "£2,103,290"),
        (1_250, "£12.50"),
        (-500, "-£5"),
        (-1_250, "-£12.50"),
        (0, "£0"),
        (1, "£0.01"),
        (-1, "-£0.01"),
        (99, "£0.99"),
        (100, "£1"),
        (100_000, "£1,000"),
        (10_000_005, "£100,000.05"),
    ],
)
def test_format_pence(pence, text):
    assert format_pence(pence) == text


@pytest.mark.parametrize("value", [1.5, True, "100", None])
def test_format_pence_refuses_non_integers(value):
    with pytest.raises(TypeError):
        format_pence(value)


@given(st.integers(min_value=0, max_value=MAX_PENCE // 100))
def test_whole_pounds_round_trip_through_format(pounds):
    pence = pounds * 100
    assert parse_pounds(format_pence(pence)) == pence


@given(st.integers(min_value=0, max_value=MAX_PENCE))
def test_any_non_negative_pence_round_trip_through_format(pence):
    assert parse_pounds(format_pence(pence)) == pence


@given(st.integers(min_value=MAX_PENCE + 1, max_value=10**17))
def test_any_amount_above_the_maximum_is_refused(pence):
    with pytest.raises(MoneyError, match="the most Quorum accepts"):
        parse_pounds(format_pence(pence))


@given(st.integers(min_value=1, max_value=10**15))
def test_formatted_negatives_are_refused(pence):
    with pytest.raises(MoneyError, match="is negative"):
        parse_pounds(format_pence(-pence))


@given(st.integers(min_value=0, max_value=MAX_PENCE // 100_000))
def test_k_and_m_suffixes_scale_exactly(n):
    assert parse_pounds(f"{n}k") == n * 100_000
    if n <= MAX_PENCE // 100_000_000:
        assert parse_pounds(f"£{n}m") == n * 100_000_000


_money_alphabet = st.sampled_from(list("0123456789,.£kKmM -()+e\u2212\u00a0x"))


@given(st.one_of(st.text(), st.text(_money_alphabet, max_size=20)))
@example("-0")
@example("0.0")
@example("(0)")
def test_never_negative_and_only_money_errors(text):
    try:
        pence = parse_pounds(text, field="f")
    except MoneyError as exc:
        assert str(exc).startswith(f"f: {text!r} ")
    else:
        assert isinstance(pence, int)
        assert pence >= 0
