"""Deployment-tier fixtures: a fresh pair of PostgreSQL databases per module (Airflow's metadata
and the sync's state)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.deployment.components import PG


@pytest.fixture(scope="module")
def databases():
    suffix = uuid.uuid4().hex[:8]
    names = {"airflow": f"gss_airflow_{suffix}", "state": f"gss_state_{suffix}"}
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield {k: f"{PG}/{v}" for k, v in names.items()}
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
