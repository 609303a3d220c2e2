"""Row-level rules GX cannot express: email syntax, real phone numbers and dates, the password
policy, the role/division catalogue and manager references. Each returns a failing-row mask.

Vectorised where pandas can; email-validator and phonenumbers run once per distinct value, and
most emails skip email-validator through a conservative pattern it is known to accept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

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


@dataclass(frozen=True)
class RowCheck:
    """A failed-row mask for one rule, with the message written to rejects.csv."""

    rule: str
    message: str
    failed: np.ndarray


def python_checks(frame: pd.DataFrame, catalogue: Catalogue) -> Iterator[RowCheck]:
    """Every Python row rule whose column is in ``frame`` (canonical string columns)."""
    columns = set(frame.columns)
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


def invalid_emails(emails: pd.Series) -> np.ndarray:
    """Filled emails that email-validator (syntax only, no DNS) rejects."""
    from email_validator import EmailNotValidError, validate_email

    filled = emails != ""
    plain = emails.str.fullmatch(_PLAIN_EMAIL) & (emails.str.len() <= 254)
    local_length = emails.str.find("@")
    tld = emails.str.rsplit(".", n=1).str[-1].str.lower()
    easy = plain & (local_length <= 64) & ~tld.isin(_SPECIAL_USE_TLDS)
    easy &= ~emails.str.lower().str.contains("xn--", regex=False)
    ask = filled & ~easy

    def rejected(value: str) -> bool:
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError:
            return True
        return False

    return _per_distinct_value(emails, ask.to_numpy(bool), rejected)


def invalid_phone_numbers(phones: pd.Series) -> np.ndarray:
    """E.164-shaped numbers that phonenumbers says are not valid numbers (others: GX rule)."""
    import phonenumbers

    def rejected(value: str) -> bool:
        try:
            return not phonenumbers.is_valid_number(phonenumbers.parse(value, None))
        except phonenumbers.NumberParseException:
            return True

    shaped = phones.str.fullmatch(E164).fillna(False).to_numpy(bool)
    return _per_distinct_value(phones, shaped, rejected)


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
    names = values.str.split(separator).explode().str.strip() if separator else values
    unknown = names[(names != "") & ~names.isin(list(known))]
    return np.isin(np.arange(len(values)), unknown.index.unique())


def manager_problems(ids: pd.Series, managers: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Masks of rows whose manager is not in the export, and of rows managing themselves."""
    filled = managers != ""
    known = managers.isin(ids[ids != ""].unique())
    itself = filled & (managers == ids)
    return (filled & ~known).to_numpy(bool), itself.to_numpy(bool)


def _per_distinct_value(values: pd.Series, ask: np.ndarray, rejected) -> np.ndarray:
    """Apply ``rejected`` once per distinct value among the rows in ``ask``."""
    failed = np.zeros(len(values), dtype=bool)
    if not ask.any():
        return failed
    subset = values[ask]
    verdicts = {value: rejected(value) for value in subset.unique()}
    failed[ask] = subset.map(verdicts).to_numpy(bool)
    return failed
