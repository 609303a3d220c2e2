"""Row rules GX cannot express: email, phone, date, password, catalogue, manager, employee id
pattern and control characters in text."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from genesys_sync.config import DEFAULT_EMPLOYEE_ID_PATTERN
from genesys_sync.validation.result import Catalogue

E164 = r"^\+[1-9][0-9]{6,14}$"
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Emails of this shape always pass email-validator (no DNS); anything else is asked to it.
_PLAIN_EMAIL = (
    r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$"
)
_SPECIAL_USE_TLDS = ("arpa", "invalid", "local", "localhost", "onion", "test")
PASSWORD_MIN_LENGTH = 8
#: C0 controls (NUL, tab, newline...), DEL, C1 controls, bidi embeddings/overrides (U+202A-U+202E)
#: and isolates (U+2066-U+2069): never part of a name, and able to disguise one.
UNSAFE_TEXT = "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
#: Text columns checked for them (names, titles, and the organisation fields shown beside them).
TEXT_COLUMNS = ("display_name", "first_name", "last_name", "title", "department", "division")


@dataclass(frozen=True)
class RowCheck:
    """A failed-row mask for one rule, with the message written to rejects.csv."""

    rule: str
    message: str
    failed: np.ndarray


def python_checks(
    frame: pd.DataFrame,
    catalogue: Catalogue,
    employee_id_pattern: str = DEFAULT_EMPLOYEE_ID_PATTERN,
) -> Iterator[RowCheck]:
    """Every Python row rule whose column is in ``frame`` (canonical string columns)."""
    columns = set(frame.columns)
    if "employee_id" in columns:
        ids = frame["employee_id"]
        yield RowCheck(
            "employee_id_pattern",
            "employee_id has characters or a form the sync does not accept (allowed: "
            "gate.employee_id_pattern, by default letters, digits, '.', '_' and '-', starting "
            "with a letter or digit, at most 64 characters)",
            (ids != "").to_numpy(bool) & unsafe_employee_ids(ids, employee_id_pattern),
        )
    for column in TEXT_COLUMNS:
        if column in columns:
            yield RowCheck(
                f"{column}_characters",
                f"{column} contains a control character (such as NUL, a tab or a line break) "
                "or a bidirectional override/isolate (U+202A-U+202E, U+2066-U+2069); remove "
                "it in the HRIS",
                unsafe_text(frame[column]),
            )
    if "email" in columns:
        yield RowCheck(
            "email_syntax",
            "email is not a valid email address (name@domain.tld)",
            invalid_emails(frame["email"]),
        )
    for column in ("work_phone", "mobile_phone"):
        if column in columns:
            yield RowCheck(
                column,
                f"{column} is not a valid phone number for its country code",
                invalid_phone_numbers(frame[column]),
            )
    if "hire_date" in columns:
        yield RowCheck(
            "hire_date",
            "hire_date is not a real calendar date",
            impossible_dates(frame["hire_date"]),
        )
    if "password" in columns:
        yield RowCheck(
            "password_policy",
            f"password does not meet the policy: {PASSWORD_MIN_LENGTH}+ characters with an "
            "upper-case letter, a lower-case letter and a digit",
            weak_passwords(frame["password"]),
        )
    if catalogue.roles and "roles" in columns:
        yield RowCheck(
            "unknown_role",
            "roles names a role the tenant does not have (role catalogue)",
            unknown_names(frame["roles"], catalogue.roles, separator=";"),
        )
    if catalogue.divisions and "division" in columns:
        yield RowCheck(
            "unknown_division",
            "division is not a division of the tenant (division catalogue)",
            unknown_names(frame["division"], catalogue.divisions),
        )
    if {"employee_id", "manager_employee_id"} <= columns:
        unknown, itself = manager_problems(frame["employee_id"], frame["manager_employee_id"])
        yield RowCheck(
            "manager_unknown",
            "manager_employee_id is not the employee_id of any row in the export",
            unknown,
        )
        yield RowCheck("manager_self", "manager_employee_id is the row's own employee_id", itself)


def unsafe_employee_ids(ids: pd.Series, pattern: str = DEFAULT_EMPLOYEE_ID_PATTERN) -> np.ndarray:
    """Ids that do not match ``pattern`` in full (empty ones included)."""
    return ~ids.str.fullmatch(pattern).fillna(False).to_numpy(bool)


def unsafe_text(values: pd.Series) -> np.ndarray:
    """Values holding a control or bidi override/isolate character (see ``UNSAFE_TEXT``)."""
    return values.str.contains(UNSAFE_TEXT).fillna(False).to_numpy(bool)


def invalid_emails(emails: pd.Series) -> np.ndarray:
    """Filled emails that email-validator (syntax only, no DNS) rejects."""
    from email_validator import EmailNotValidError, validate_email

    filled = emails != ""
    plain = emails.str.fullmatch(_PLAIN_EMAIL) & (emails.str.len() <= 254)
    local_length = emails.str.find("@")
    tld = emails.str.rsplit(".", n=1).str[-1].str.lower()
    easy = plain & (local_length <= 64) & ~tld.isin(_SPECIAL_USE_TLDS)
    easy &= ~emails.str.contains("--", regex=False)  # IDNA: "ab--" labels, Punycode
    ask = filled & ~easy

    def rejected(value: str) -> bool:
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            return True
        return False

    return _per_distinct_value(emails, ask.to_numpy(bool), rejected)


def invalid_phone_numbers(phones: pd.Series) -> np.ndarray:
    """E.164-shaped numbers that are not valid numbers (the shape itself is a GX rule).

    The number is built from its digits (country code, national number) rather than parsed,
    which is twice as fast and strict: a value is valid only if it is exactly the E.164 form of
    a number phonenumbers considers valid (e.g. no national trunk prefix after the code).
    """
    shaped = phones.str.fullmatch(E164).fillna(False).to_numpy(bool)
    return _per_distinct_value(phones, shaped, lambda value: not is_valid_e164(value))


def is_valid_e164(value: str) -> bool:
    """Whether an E.164-shaped string (``+`` and digits) is a valid number (phonenumbers)."""
    import phonenumbers

    digits = value[1:]
    for size in (1, 2, 3):  # country calling codes are prefix-free
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            break
    else:
        return False
    if not national:
        return False
    zeros = len(national) - len(national.lstrip("0"))
    number = phonenumbers.PhoneNumber(
        country_code=code,
        national_number=int(national),
        italian_leading_zero=True if zeros else None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )
    return phonenumbers.is_valid_number(number)


def impossible_dates(dates: pd.Series) -> np.ndarray:
    """YYYY-MM-DD values that are not calendar dates (e.g. 2021-02-30)."""
    shaped = dates.str.fullmatch(ISO_DATE).fillna(False).to_numpy(bool)
    parsed = pd.to_datetime(dates.where(shaped, None), format="%Y-%m-%d", errors="coerce")
    return shaped & parsed.isna().to_numpy(bool)


def weak_passwords(passwords: pd.Series) -> np.ndarray:
    """Filled passwords that miss the policy (length, upper, lower, digit)."""
    weak = (
        (passwords.str.len() < PASSWORD_MIN_LENGTH)
        | ~passwords.str.contains("[A-Z]")
        | ~passwords.str.contains("[a-z]")
        | ~passwords.str.contains("[0-9]")
    )
    return ((passwords != "") & weak).to_numpy(bool)


def unknown_names(
    values: pd.Series, known: frozenset[str], separator: str | None = None
) -> np.ndarray:
    """Rows naming something not in ``known`` (a ``separator``-separated list, or one name)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values.to_numpy(object), pa.string())
    if separator:
        lists = pc.split_pattern(array, separator)
        names = pc.utf8_trim_whitespace(pc.list_flatten(lists))
        rows = pc.list_parent_indices(lists).to_numpy()
    else:
        names, rows = array, np.arange(len(array))
    unknown = pc.and_(pc.not_equal(names, ""), pc.invert(_is_in(names, known)))
    failed = np.zeros(len(values), dtype=bool)
    failed[rows[unknown.to_numpy(zero_copy_only=False)]] = True
    return failed


def manager_problems(ids: pd.Series, managers: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Masks of rows whose manager is not in the export, and of rows managing themselves."""
    import pyarrow as pa

    filled = (managers != "").to_numpy(bool)
    known = _is_in(pa.array(managers.to_numpy(object), pa.string()), ids[ids != ""])
    itself = filled & (managers == ids).to_numpy(bool)
    return filled & ~known.to_numpy(zero_copy_only=False), itself


def _is_in(array: Any, values: Iterable[str]) -> Any:
    """Arrow's ``is_in`` (pandas' ``isin`` is ~25x slower on string columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    value_set = pa.array(values if isinstance(values, pd.Series) else list(values), pa.string())
    return pc.is_in(array, value_set=value_set)


def _per_distinct_value(
    values: pd.Series, ask: np.ndarray, rejected: Callable[[str], bool]
) -> np.ndarray:
    """Apply ``rejected`` once per distinct value among the rows in ``ask``."""
    failed = np.zeros(len(values), dtype=bool)
    if not ask.any():
        return failed
    subset = values[ask]
    verdicts = {value: rejected(value) for value in subset.unique()}
    failed[ask] = subset.map(verdicts).to_numpy(bool)
    return failed
