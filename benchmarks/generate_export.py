"""Write a realistic synthetic HRIS export (the sample's columns) for the gate benchmark."""

# Usage: python benchmarks/generate_export.py [--rows 100000] [--out PATH] [--seed N]
# Deterministic for a seed: an org chart (root, directors, managers, staff), ~90% active / 5% leave
# / 5% terminated, catalogue roles and divisions, skills and languages, accented names, reserved
# (555 / Ofcom drama) E.164 phone ranges, and ~0.2% row-level defects (--defect-rate).

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from genesys_sync.config import CANONICAL_COLUMNS  # noqa: E402

COLUMNS: tuple[str, ...] = CANONICAL_COLUMNS


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "José Zoë Siobhán Björn Chloé Łukasz Aïcha François Søren Priya Hiroshi Ana Mateus "
    "Ngozi Olga Kwame Fatma Inés Dmitri Mei Tomás Amélie Rahul Jürgen Camila Oluwaseun Ewa "
    "Liam Sofía Nikolaj Yasmin Giulia Chidi Hannah Marek Leilani Ömer Elif Benoît Aroha "
    "Pedro Ingrid Kofi Lucía Thabo Agnieszka Rafael Noémie Sipho Valentina Arjun Mia "
    "Daniel Lea Hamza Clara Nils Emma Samuel Margaret"
)
LAST_NAMES = _words(
    "Okafor García Müller Byrne Ångström Dubois Nowak Benali Lefèvre Nielsen Raghunathan "
    "Tanaka Pérez Conceição Adeyemi Ivanova Mensah Yılmaz Domínguez Volkov Chen O'Brien "
    "Rousseau Deshpande Weiß Restrepo Bakare Kowalczyk Murphy Herrera Sørensen Haddad "
    "Rossi Okeke Schröder Dvořák Kahale Demir Şahin Girard Ngata Gonçalves Håkansson "
    "Boateng Fernández Nkosi Wiśniewska Alcântara Faure Dlamini Bianchi Iyer Kovačić "
    "O'Neill Jovanović Amrani Östberg Johansson Achebe"
)
DIVISIONS = ("Sales", "Support", "Billing")
DEPARTMENTS = {
    "Sales": ("Inside Sales", "Field Sales", "Renewals"),
    "Support": ("Customer Support", "Technical Support", "Workforce Management"),
    "Billing": ("Billing Operations", "Collections"),
}
TITLES = {
    "Sales": ("Account Executive", "Sales Representative", "Senior Account Executive"),
    "Support": ("Support Agent", "Senior Support Agent", "Technical Support Specialist"),
    "Billing": ("Billing Specialist", "Collections Agent", "Billing Analyst"),
}
SKILLS = (
    "Billing",
    "Refunds",
    "Collections",
    "Outbound Sales",
    "Upselling",
    "Renewals",
    "Technical Support",
    "Chat Support",
    "Email Support",
    "Escalations",
    "Spanish Support",
    "French Support",
)
LANGUAGES = ("Spanish", "French", "German", "Portuguese", "Polish", "Japanese", "Italian")
AGENT_ROLES = ("employee;User", "employee;User;Communicate - User")
LEADER_ROLES = "employee;User;Supervisor;Quality Evaluator"
US_AREA_CODES = _words(
    "202 212 213 305 312 404 415 503 512 602 617 702 713 718 801 808 816 901 916 919"
)
UK_FICTIONAL = ("44207946", "44161496", "44113496", "44117496", "44121496", "44131496")
_FOLD = str.maketrans({"Ł": "L", "ł": "l", "ø": "o", "Ø": "O", "ß": "ss", "ı": "i", "'": ""})


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore")
    return "".join(ch for ch in folded.decode().lower() if ch.isalnum())


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.7:
        # 555 numbers are reserved (fictional or unassigned); mostly distinct, like real data.
        return f"+1{rng.choice(US_AREA_CODES)}555{rng.randint(0, 9999):04d}"
    return f"+{rng.choice(UK_FICTIONAL)}0{rng.randint(0, 999):03d}"


def _date(rng: random.Random) -> str:
    return f"{rng.randint(2005, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _pairs(rng: random.Random, names: tuple[str, ...], low: int, high: int) -> str:
    chosen = rng.sample(names, rng.randint(low, high))
    return ";".join(f"{name}:{rng.randint(1, 5)}" for name in chosen)


def _defect(rng: random.Random, row: dict[str, str]) -> None:
    """Introduce one row-level defect (the kinds the gate quarantines)."""
    kind = rng.choice(("phone", "skill", "date", "email", "language"))
    if kind == "phone":
        row["work_phone"] = row["work_phone"][:-2]
    elif kind == "skill":
        row["skills"] = "Billing:7"
    elif kind == "date":
        row["hire_date"] = "2021-02-30"
    elif kind == "email":
        row["email"] = row["email"].replace("@", " at ")
    else:
        row["languages"] = "English"


def generate_rows(rows: int, seed: int = 20240601, defect_rate: float = 0.002) -> Iterator[dict]:
    """Yield ``rows`` export rows (dicts keyed by canonical column), deterministically."""
    rng = random.Random(seed)
    directors = max(1, rows // 2000)
    managers = max(1, rows // 12)
    for index in range(rows):
        number = 100_001 + index
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        division = DIVISIONS[index % len(DIVISIONS)]
        if index == 0:
            manager, division, title, roles = (
                "",
                "Home",
                "Chief Executive Officer",
                "employee;Admin",
            )
        elif index <= directors:
            manager, title, roles = "E100001", f"Director of {division}", LEADER_ROLES
        elif index <= directors + managers:
            manager = f"E{100_001 + 1 + rng.randrange(directors)}"
            title, roles = f"{division} Team Lead", LEADER_ROLES
        else:
            manager = f"E{100_001 + 1 + directors + rng.randrange(managers)}"
            title, roles = rng.choice(TITLES[division]), rng.choice(AGENT_ROLES)
        lead = index <= directors + managers
        status = "active"
        if not lead:
            draw = rng.random()
            status = "leave" if draw < 0.05 else "terminated" if draw < 0.10 else "active"
        row = {
            "employee_id": f"E{number}",
            "email": f"{_ascii(first)}.{_ascii(last)}.{number}@example.com",
            "display_name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "title": title,
            "department": "Executive" if index == 0 else rng.choice(DEPARTMENTS[division]),
            "division": division,
            "manager_employee_id": manager,
            "status": status,
            "hire_date": _date(rng),
            "work_phone": _phone(rng),
            "mobile_phone": _phone(rng) if rng.random() < 0.6 else "",
            "roles": roles,
            "skills": _pairs(rng, SKILLS, 0, 4),
            "languages": ";".join(["English:5", _pairs(rng, LANGUAGES, 0, 1)]).strip(";"),
        }
        if not lead and rng.random() < defect_rate:
            _defect(rng, row)
        yield row


def write_export(
    path: Path, rows: int = 100_000, seed: int = 20240601, defect_rate: float = 0.002
) -> Path:
    """Write the synthetic export as UTF-8 CSV to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(generate_rows(rows, seed, defect_rate))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--defect-rate", type=float, default=0.002)
    default_out = Path(tempfile.gettempdir()) / "genesys-sync-bench" / "hris_export.csv"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    print(write_export(args.out, args.rows, args.seed, args.defect_rate))


if __name__ == "__main__":
    main()
