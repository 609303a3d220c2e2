"""``sync.roles`` and ``sync.phone_types``: what the sync owns inside a user, checked on load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genesys_sync.config import ConfigError, load_config


def _config(tmp_path: Path, sync: str) -> Path:
    path = tmp_path / "sync.yaml"
    path.write_text(f"version: 1\nsync:\n{sync}", encoding="utf-8")
    return path


def test_the_shipped_config_owns_work_and_mobile_phones_and_only_granted_roles():
    policy = load_config().sync
    assert policy.phone_types == {"work_phone": "work", "mobile_phone": "mobile"}
    assert policy.roles == "additive" and policy.roles_authoritative is False


def test_authoritative_roles_and_other_phone_types_can_be_configured(tmp_path):
    sync = "  roles: authoritative\n  phone_types:\n    work_phone: work\n    mobile_phone: work2\n"
    policy = load_config(_config(tmp_path, sync)).sync
    assert policy.roles_authoritative is True
    assert policy.phone_types == {"work_phone": "work", "mobile_phone": "work2"}


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ("  roles: all\n", "sync.roles must be one of additive, authoritative"),
        ("  phone_types:\n    fax: other\n", "unknown column(s): fax"),
        ("  phone_types:\n    work_phone: work\n    mobile_phone: work\n", "same phone type"),
        ("  phone_types: [work]\n", "must map export phone columns"),
    ],
)
def test_wrong_ownership_settings_are_refused(tmp_path, sync, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(_config(tmp_path, sync))
