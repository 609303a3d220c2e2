"""The Python row rules: their shortcuts agree with email-validator and phonenumbers."""

from __future__ import annotations

import random

import pandas as pd
import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from genesys_sync.validation.rejects import neutralise_formulas
from genesys_sync.validation.row_rules import (
    impossible_dates,
    invalid_emails,
    invalid_phone_numbers,
    is_valid_e164,
    manager_problems,
    unknown_names,
    weak_passwords,
)


def validator_rejects(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return True
    return False


def random_emails(count: int) -> list[str]:
    rng = random.Random(7)
    local_chars = "abcXYZ019._%+-"
    domain_chars = "abz09-."
    tlds = ["com", "org", "c0m", "x", "test", "local", "onion", "de", "museum", "123", ""]
    emails = []
    for _ in range(count):
        local = "".join(rng.choice(local_chars) for _ in range(rng.randint(0, 70)))
        domain = "".join(rng.choice(domain_chars) for _ in range(rng.randint(0, 70)))
        emails.append(f"{local}@{domain}.{rng.choice(tlds)}".rstrip("."))
    emails += ["a@b.co", "first.last@example.com", "x@xn--nxasmq6b.com", "a..b@example.com"]
    emails += ["josé@example.com", "a@exämple.com", "a@-example.com", "a" * 65 + "@example.com"]
    return emails


def test_email_check_agrees_with_email_validator_on_every_value() -> None:
    emails = random_emails(4000)
    verdicts = invalid_emails(pd.Series(emails, dtype="str"))

    disagreements = [e for e, v in zip(emails, verdicts, strict=True) if v != validator_rejects(e)]
    assert disagreements == []
    assert 0 < sum(verdicts) < len(emails)  # the corpus holds both kinds


def test_empty_emails_are_left_to_the_required_rule() -> None:
    assert invalid_emails(pd.Series(["", "a@example.com"], dtype="str")).tolist() == [False, False]


def strictly_valid(value: str) -> bool:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.is_valid_number(number) and e164 == value


def test_phone_check_agrees_with_parsing_and_formatting_back() -> None:
    rng = random.Random(11)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    values = []
    for _ in range(5000):
        national = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
        value = f"+{rng.choice(codes)}{'0' if rng.random() < 0.3 else ''}{national}"
        if len(value) <= 16:
            values.append(value)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example:
            values.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))

    disagreements = [v for v in values if is_valid_e164(v) != strictly_valid(v)]
    assert disagreements == []
    assert sum(map(is_valid_e164, values)) > 200


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("+12025550123", True),
        ("+442079460123", True),
        ("+61491570156", True),
        ("+1202555012", False),  # one digit short
        ("+4402079460123", False),  # the trunk prefix 0 is not part of E.164
        ("+999123456789", False),  # no such country code
    ],
)
def test_phone_examples(value: str, valid: bool) -> None:
    assert is_valid_e164(value) is valid


def test_only_e164_shaped_phones_are_checked_here() -> None:
    phones = pd.Series(["", "202-555-0100", "+1202555012", "+12025550123"], dtype="str")
    assert invalid_phone_numbers(phones).tolist() == [False, False, True, False]


def test_impossible_dates() -> None:
    dates = pd.Series(["2021-02-30", "2020-02-29", "", "03/15/2020", "2021-13-01"], dtype="str")
    assert impossible_dates(dates).tolist() == [True, False, False, False, True]


def test_password_policy() -> None:
    passwords = pd.Series(["", "Sh0rt", "alllower1", "ALLUPPER1", "NoDigits", "Go0dPass"])
    assert weak_passwords(passwords.astype("str")).tolist() == [
        False,
        True,
        True,
        True,
        True,
        False,
    ]


def test_unknown_names_in_lists_and_single_values() -> None:
    roles = pd.Series(["employee; User", "", "employee;Wizard", "User;"], dtype="str")
    assert unknown_names(roles, frozenset({"employee", "User"}), ";").tolist() == [
        False,
        False,
        True,
        False,
    ]
    divisions = pd.Series(["Home", "", "Mars"], dtype="str")
    assert unknown_names(divisions, frozenset({"Home"})).tolist() == [False, False, True]


def test_manager_problems() -> None:
    ids = pd.Series(["E1", "E2", "E3", ""], dtype="str")
    managers = pd.Series(["", "E1", "E3", "E9"], dtype="str")
    unknown, itself = manager_problems(ids, managers)
    assert unknown.tolist() == [False, False, False, True]
    assert itself.tolist() == [False, False, True, False]


def test_neutralise_formulas() -> None:
    cells = pd.Series(["=1+2", "+1", "-1", "@A1", "\tx", "\rx", "E1001", "a=b", ""])
    assert neutralise_formulas(cells).tolist() == [
        "'=1+2",
        "'+1",
        "'-1",
        "'@A1",
        "'\tx",
        "'\rx",
        "E1001",
        "a=b",
        "",
    ]
