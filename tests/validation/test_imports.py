"""The validation package is cheap to import: DAG files may import it at parse time."""

from __future__ import annotations

import subprocess
import sys

from genesys_sync.settings import PROJECT_ROOT


def test_importing_the_package_loads_neither_pandas_nor_gx_nor_airflow() -> None:
    code = (
        "import sys; from genesys_sync.validation import run_gate, gate_export, GateResult; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'airflow', 'pandas', 'pyarrow', 'great_expectations', 'numpy'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PROJECT_ROOT / "plugins")},
    )
    assert out.stdout.strip() == "[]"


def test_the_gate_never_imports_airflow() -> None:
    code = (
        "import sys; import genesys_sync.validation.gate; "
        "print('airflow' in {m.split('.')[0] for m in sys.modules})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PROJECT_ROOT / "plugins")},
    )
    assert out.stdout.strip() == "False"
