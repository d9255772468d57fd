import csv
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.money import MAX_PENCE, format_pence
from engine.domain.savings import ParsedSavings, SavingsBasis, parse_savings

B = SavingsBasis
BIDS_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "bids-2011-04.csv"

# Every row of the April 2011 bids, in file order:
# (project, savings as written, basis, amount_pence, high_pence, years, annual, annual_pence)
EXPECTED_BIDS = [
    ("Shared ICT", "2,137,416 5 years", B.OVER_YEARS, 213_741_600, None, 5, False, 42_748_320),
    ("Business Intelligence and e-sourcing", "301,500 2 years",
     B.OVER_YEARS, 30_150_000, None, 2, False, 15_075_000),
    ("EM Public Sector Network", "10m per annum",
     B.PER_ANNUM, 1_000_000_000, None, None, True, 1_000_000_000),
    ("Fleet Management", "589,701 5 years", B.OVER_YEARS, 58_970_100, None, 5, False, 11_794_020),
    ("Carbon Reduction In Schools", "24,000 per annum",
     B.PER_ANNUM, 2_400_000, None, None, True, 2_400_000),
    ("Changing Thinking for Leaner Services", "100,000",
     B.ONE_OFF, 10_000_000, None, None, False, None),
    ("Leisure Management Bookings", "17,000 per annum",
     B.PER_ANNUM, 1_700_000, None, None, True, 1_700_000),
    ("Mobile Framework", "200,000", B.ONE_OFF, 20_000_000, None, None, False, None),
    ("Rethinking Development Services", "165,000", B.ONE_OFF, 16_500_000, None, None, False, None),
    ("Energy Efficiency for Business SME", "30,000 5 years",
     B.OVER_YEARS, 3_000_000, None, 5, False, 600_000),
    ("Drupal Framework", "15,000/ 30,000 annual saving",
     B.RANGE, 1_500_000, 3_000_000, None, True, 1_500_000),
    ("Winter Gritting and Snow Clearance", "4,000 per annum",
     B.PER_ANNUM, 400_000, None, None, True, 400_000),
    ("Reducing Household Energy Bills", "none specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Financial Inclusion", "none specified", B.NONE_STATED, None, None, None, False, None),
    ("NVQ Centre Development", "None specified", B.NONE_STATED, None, None, None, False, None),
    ("Drugs & Alcohol Arrest Referral Service", "None specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Transparency – Contract Opportunities", "None Specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Active Derbyshire NHS savings", "113,664", B.ONE_OFF, 11_366_400, None, None, False, None),
    ("Co-location for efficiencies and better outcomes in localities", "None Specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Land Registry", "none specified", B.NONE_STATED, None, None, None, False, None),
    ("Joint Garage and Fleet Maintenance services", "50,000/ 100,000 anticipated",
     B.RANGE, 5_000_000, 10_000_000, None, False, None),
    ("Property Alliance - Manor Kingsway Hospital", "none specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Sheffield City Region Landlord Accreditation", "none specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Energy Monitoring Loan Scheme", "None specified",
     B.NONE_STATED, None, None, None, False, None),
    ("Business Transformation", "None specified", B.NONE_STATED, None, None, None, False, None),
    ("Optimum Value from existing shared supplier arrangements", "none specified",
     B.NONE_STATED, None, None, None, False, None),
]  # fmt: skip


def test_every_savings_form_in_the_april_2011_bids_is_read_exactly():
    assert BIDS_CSV.is_file(), f"shared bids data missing: {BIDS_CSV}"
    with BIDS_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    actual = []
    for row in rows:
        written = row["cashable_savings_as_written"]
        parsed = parse_savings(written)
        assert parsed.text == written  # kept exactly as written
        assert parsed.readable
        actual.append(
            (
                row["project"],
                written,
                parsed.basis,
                parsed.amount_pence,
                parsed.high_pence,
                parsed.years,
                parsed.annual,
                parsed.annual_pence(),
            )
        )
    assert len(rows) == 26
    assert actual == EXPECTED_BIDS


@pytest.mark.parametrize(
    ("text", "basis", "amount", "high", "years", "annual"),
    [
        ("£1.2m over 3 years", B.OVER_YEARS, 120_000_000, None, 3, False),
        ("100 over five years", B.OVER_YEARS, 10_000, None, 5, False),
        ("£500k over a 3-year period", B.OVER_YEARS, 50_000_000, None, 3, False),
        ("10,000 1 year", B.OVER_YEARS, 1_000_000, None, 1, False),
        ("5,000 across 4 yrs", B.OVER_YEARS, 500_000, None, 4, False),
        ("40k p.a.", B.PER_ANNUM, 4_000_000, None, None, True),
        ("40k pa", B.PER_ANNUM, 4_000_000, None, None, True),
        ("40K PA", B.PER_ANNUM, 4_000_000, None, None, True),
        ("£40,000 per year", B.PER_ANNUM, 4_000_000, None, None, True),
        ("40,000 a year", B.PER_ANNUM, 4_000_000, None, None, True),
        ("40,000 annually", B.PER_ANNUM, 4_000_000, None, None, True),
        ("£40,000/yr", B.PER_ANNUM, 4_000_000, None, None, True),
        ("£24,000 cashable savings per annum", B.PER_ANNUM, 2_400_000, None, None, True),
        ("24,000 annual saving", B.PER_ANNUM, 2_400_000, None, None, True),
        ("1,000 - 2,000", B.RANGE, 100_000, 200_000, None, False),
        ("1,000-2,000", B.RANGE, 100_000, 200_000, None, False),
        ("£1,000 \u2013 £2,000 per annum", B.RANGE, 100_000, 200_000, None, True),
        ("£1m to £2m", B.RANGE, 100_000_000, 200_000_000, None, False),
        ("between 5k and 10k annually", B.RANGE, 500_000, 1_000_000, None, True),
        ("5,000/5,000", B.RANGE, 500_000, 500_000, None, False),
        ("£100,000", B.ONE_OFF, 10_000_000, None, None, False),
        ("100,000 one-off", B.ONE_OFF, 10_000_000, None, None, False),
        ("100,000 total", B.ONE_OFF, 10_000_000, None, None, False),
        ("  £1.5M.  ", B.ONE_OFF, 150_000_000, None, None, False),
        ("0", B.ONE_OFF, 0, None, None, False),
    ],
)
def test_reads_unambiguous_variants(text, basis, amount, high, years, annual):
    parsed = parse_savings(text)
    assert (parsed.basis, parsed.amount_pence, parsed.high_pence, parsed.years, parsed.annual) == (
        basis,
        amount,
        high,
        years,
        annual,
    )
    assert parsed.text == text


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "none specified",
        "None Specified",
        "NONE SPECIFIED",
        "None specified.",
        "none",
        "Not stated",
        "n/a",
        "Nil",
        "TBC",
    ],
)
def test_none_stated(text):
    parsed = parse_savings(text)
    assert parsed.basis is B.NONE_STATED
    assert parsed.readable
    assert (parsed.amount_pence, parsed.high_pence, parsed.years, parsed.annual) == (
        None,
        None,
        None,
        False,
    )
    assert parsed.text == (text or "")
    assert parsed.annual_pence() is None


@pytest.mark.parametrize(
    "text",
    [
        "up to 50,000",
        "over 50,000",
        "at least £10k",
        "c. 50k",
        "approx 20,000",
        "in excess of 1m",
        "10-20k",  # does the k apply to both ends? not guessed
        "10k-20",
        "20,000/ 10,000",  # low above high
        "50,000 - 100,000 over 3 years",
        "12,34 per annum",
        "1.234 pa",
        "-5,000",
        "£5,000 pa for 3 years",
        "40kpa",
        "100 0 years",
        "100 101 years",
        "100 over eleven years",
        "significant",
        "savings",
        "some savings, to be confirmed",
        "5,000 per month",
        "15,000/30,000/45,000",
        "10m per annum; 5m one-off",
        "1,00,000",
    ],
)
def test_unreadable_text_is_kept_as_written_never_guessed(text):
    parsed = parse_savings(text)
    assert parsed.basis is B.UNREADABLE
    assert not parsed.readable
    assert parsed.text == text
    assert (parsed.amount_pence, parsed.high_pence, parsed.years, parsed.annual) == (
        None,
        None,
        None,
        False,
    )
    assert parsed.annual_pence() is None
    assert parsed.note.startswith(f"could not read {text!r}: kept as written")


def test_unreadable_notes_say_why_when_they_can():
    assert parse_savings("20,000/ 10,000").note == (
        "could not read '20,000/ 10,000': kept as written "
        "(the range's low end is above its high end)"
    )
    assert "'12,34' is not an amount in pounds" in parse_savings("12,34 per annum").note
    assert "not an amount" in parse_savings("up to 50,000").note
    assert parse_savings("significant").note == "could not read 'significant': kept as written"


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("2,137,416 5 years", "£2,137,416 over 5 years"),
        ("10,000 1 year", "£10,000 over 1 year"),
        ("10m per annum", "£10,000,000 per year"),
        ("100,000", "£100,000 in total (no period stated)"),
        ("15,000/ 30,000 annual saving", "£15,000 to £30,000 per year"),
        ("50,000/ 100,000 anticipated", "£50,000 to £100,000 in total (no period stated)"),
        ("none specified", "no savings stated"),
    ],
)
def test_notes(text, note):
    assert parse_savings(text).note == note


def test_annual_pence():
    assert parse_savings("24,000 per annum").annual_pence() == 2_400_000
    assert parse_savings("100 3 years").annual_pence() == 3_333  # rounded down, never up
    assert parse_savings("15,000/ 30,000 annual saving").annual_pence() == 1_500_000  # low end
    assert parse_savings("50,000/ 100,000 anticipated").annual_pence() is None
    assert parse_savings("100,000").annual_pence() is None


def test_to_dict_is_json_friendly():
    parsed = parse_savings("15,000/ 30,000 annual saving")
    data = json.loads(json.dumps(parsed.to_dict()))
    assert data == {
        "text": "15,000/ 30,000 annual saving",
        "basis": "range",
        "amount_pence": 1_500_000,
        "high_pence": 3_000_000,
        "years": None,
        "annual": True,
        "annual_pence": 1_500_000,
        "readable": True,
        "note": "£15,000 to £30,000 per year",
    }


def test_basis_is_a_string_enum():
    assert B("over_years") is B.OVER_YEARS
    assert B.PER_ANNUM == "per_annum"
    assert isinstance(B.RANGE, str)


def test_parsed_savings_is_frozen():
    parsed = parse_savings("100,000")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.amount_pence = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "fields",
    [
        dict(basis=B.ONE_OFF, amount_pence=None),
        dict(basis=B.UNREADABLE, amount_pence=100),
        dict(basis=B.ONE_OFF, amount_pence=-1),
        dict(basis=B.RANGE, amount_pence=100, high_pence=None),
        dict(basis=B.RANGE, amount_pence=200, high_pence=100),
        dict(basis=B.ONE_OFF, amount_pence=100, high_pence=200),
        dict(basis=B.OVER_YEARS, amount_pence=100, years=None),
        dict(basis=B.OVER_YEARS, amount_pence=100, years=0),
        dict(basis=B.ONE_OFF, amount_pence=100, years=2),
        dict(basis=B.ONE_OFF, amount_pence=100, annual=True),
        dict(basis=B.PER_ANNUM, amount_pence=100, annual=False),
    ],
)
def test_parsed_savings_refuses_inconsistent_fields(fields):
    base = dict(text="x", high_pence=None, years=None, annual=False, note="")
    with pytest.raises(ValueError):
        ParsedSavings(**{**base, **fields})


def test_refuses_non_text():
    with pytest.raises(TypeError):
        parse_savings(100_000)  # type: ignore[arg-type]


_savings_alphabet = st.sampled_from(
    list("0123456789,./-£kmKM ") + ["per annum", " years", " pa", "none", " to ", "up to "]
)


@given(st.one_of(st.text(), st.lists(_savings_alphabet, max_size=8).map("".join)))
def test_never_raises_and_always_keeps_the_text(text):
    parsed = parse_savings(text)
    assert parsed.text == text
    assert isinstance(parsed.note, str) and parsed.note
    if parsed.amount_pence is not None:
        assert parsed.amount_pence >= 0
    if parsed.high_pence is not None:
        assert parsed.amount_pence is not None and parsed.high_pence >= parsed.amount_pence
    json.dumps(parsed.to_dict())


@given(st.integers(min_value=0, max_value=MAX_PENCE), st.integers(min_value=1, max_value=100))
def test_formatted_amounts_read_back(pence, years):
    written = format_pence(pence)
    assert parse_savings(written).amount_pence == pence
    per_annum = parse_savings(f"{written} per annum")
    assert (per_annum.basis, per_annum.amount_pence) == (B.PER_ANNUM, pence)
    over = parse_savings(f"{written} over {years} years")
    assert (over.basis, over.amount_pence, over.years) == (B.OVER_YEARS, pence, years)
    assert over.annual_pence() == pence // years


@given(st.integers(min_value=0, max_value=MAX_PENCE), st.integers(min_value=0, max_value=MAX_PENCE))
def test_ranges_read_back_or_are_refused_when_reversed(a, b):
    parsed = parse_savings(f"{format_pence(a)} - {format_pence(b)} annual")
    if a <= b:
        assert (parsed.basis, parsed.amount_pence, parsed.high_pence) == (B.RANGE, a, b)
        assert parsed.annual and parsed.annual_pence() == a
    else:
        assert parsed.basis is B.UNREADABLE
