"""Ownership inside a user: the PatchOp operations touch only the values the sync owns."""

from __future__ import annotations

import pytest

from genesys_sync.mapping import (
    ENTERPRISE,
    GENESYS,
    MANAGED_PATHS,
    Ownership,
    attribute_operations,
    desired_user,
    diff_operations,
    unsupported_paths,
)
from tests.test_plan import row

OWN = Ownership()


def roles(*names: str) -> list[dict[str, str]]:
    return [{"value": n} for n in names]


def user(**attrs) -> dict:
    return {"id": "t1", "active": True, **attrs}


# --- roles ------------------------------------------------------------------------------------


def test_a_role_the_sync_did_not_grant_is_never_removed_and_not_a_change():
    current = user(roles=roles("employee", "User", "Admin (by hand)"))
    assert attribute_operations("roles", roles("User"), current, OWN) == []
    granted = Ownership(granted_roles=("User",))
    assert attribute_operations("roles", roles("User"), current, granted) == []


def test_new_roles_are_added_without_touching_the_others():
    current = user(roles=roles("employee", "Admin (by hand)"))
    ops = attribute_operations("roles", roles("User", "Supervisor"), current, OWN)
    assert ops == [{"op": "add", "path": "roles", "value": roles("Supervisor", "User")}]


def test_a_role_the_sync_granted_is_removed_by_value_when_hr_drops_it():
    current = user(roles=roles("employee", "User", "Supervisor", "Admin (by hand)"))
    own = Ownership(granted_roles=("User", "Supervisor"))
    ops = attribute_operations("roles", roles("User"), current, own)
    assert ops == [{"op": "remove", "path": 'roles[value eq "Supervisor"]'}]
    gone = user(roles=roles("employee", "User"))  # already removed by someone: nothing to do
    assert attribute_operations("roles", roles("User"), gone, own) == []


def test_employee_is_never_removed_unless_roles_are_authoritative():
    current = user(roles=roles("employee", "User"))
    own = Ownership(granted_roles=("employee", "User"))
    assert attribute_operations("roles", None, current, own) == [
        {"op": "remove", "path": 'roles[value eq "User"]'}
    ]
    hr_owns_all = Ownership(roles_authoritative=True)
    ops = attribute_operations("roles", roles("User"), current, hr_owns_all)
    assert ops == [{"op": "remove", "path": 'roles[value eq "employee"]'}]


def test_authoritative_roles_remove_every_role_hr_does_not_list():
    current = user(roles=roles("employee", "Admin (by hand)", "User"))
    ops = attribute_operations(
        "roles", roles("User", "Supervisor"), current, Ownership(roles_authoritative=True)
    )
    assert ops == [
        {"op": "remove", "path": 'roles[value eq "Admin (by hand)"]'},
        {"op": "remove", "path": 'roles[value eq "employee"]'},
        {"op": "add", "path": "roles", "value": roles("Supervisor")},
    ]


def test_role_names_are_quoted_in_filters():
    current = user(roles=roles('Say "hi" \\ bye'))
    ops = attribute_operations(
        "roles", None, current, Ownership(granted_roles=('Say "hi" \\ bye',))
    )
    assert ops == [{"op": "remove", "path": 'roles[value eq "Say \\"hi\\" \\\\ bye"]'}]


def test_reactivation_sends_the_roles_again():
    inactive = user(active=False, roles=roles("employee", "User"))
    ops = diff_operations({"active": True, "roles": roles("User")}, inactive, OWN)
    assert ops["roles"] == [{"op": "add", "path": "roles", "value": roles("User")}]
    active = user(roles=roles("employee", "User"))
    assert "roles" not in diff_operations({"active": True, "roles": roles("User")}, active, OWN)


# --- phones and emails ------------------------------------------------------------------------

TEAMS = {"type": "microsoftteams", "value": "+12025550999"}


def test_a_teams_number_is_never_removed_and_not_a_change():
    current = user(phoneNumbers=[{"type": "work", "value": "tel:+12025550101"}, TEAMS])
    desired = [{"type": "work", "value": "+12025550101"}]
    assert attribute_operations("phoneNumbers", desired, current, OWN) == []


def test_a_changed_mobile_is_replaced_by_type_and_other_numbers_stay():
    current = user(
        phoneNumbers=[
            {"type": "work", "value": "+12025550101"},
            {"type": "mobile", "value": "+12025550102"},
            TEAMS,
        ]
    )
    desired = [
        {"type": "work", "value": "+12025550101"},
        {"type": "mobile", "value": "+12025550199"},
    ]
    ops = attribute_operations("phoneNumbers", desired, current, OWN)
    assert ops == [
        {"op": "remove", "path": 'phoneNumbers[type eq "mobile"]'},
        {"op": "add", "path": "phoneNumbers", "value": [desired[1]]},
    ]


def test_phone_types_are_configurable():
    mapped = {"work_phone": "work", "mobile_phone": "work2"}
    desired = desired_user(row("E1", mobile_phone="+12025550102"), mapped)
    assert desired.attributes["phoneNumbers"] == [
        {"type": "work", "value": "+12025550101"},
        {"type": "work2", "value": "+12025550102"},
    ]
    own = Ownership(phone_types=("work", "work2"))
    current = user(
        phoneNumbers=[{"type": "work", "value": "+12025550101"}, {"type": "mobile", "value": "+1"}]
    )
    ops = attribute_operations("phoneNumbers", desired.attributes["phoneNumbers"], current, own)
    assert ops == [  # mobile is no longer the sync's: left alone
        {"op": "add", "path": "phoneNumbers", "value": [{"type": "work2", "value": "+12025550102"}]}
    ]


def test_only_the_work_email_is_owned():
    other = {"type": "other", "value": "e1@example.com"}  # Genesys: mirrors userName, read-only
    current = user(emails=[{"type": "work", "value": "E1@Example.com"}, other])
    desired = [{"type": "work", "value": "e1@example.com", "primary": True}]
    assert attribute_operations("emails", desired, current, OWN) == []
    moved = [{"type": "work", "value": "new@example.com", "primary": True}]
    assert attribute_operations("emails", moved, current, OWN) == [
        {"op": "remove", "path": 'emails[type eq "work"]'},
        {"op": "add", "path": "emails", "value": moved},
    ]


# --- single-valued attributes and schemas ------------------------------------------------------


def test_an_empty_value_in_hr_is_a_remove_and_an_absent_one_no_op():
    current = user(title="Agent", **{ENTERPRISE: {"department": "Support"}})
    assert diff_operations({"title": None}, current, OWN) == {
        "title": [{"op": "remove", "path": "title"}]
    }
    assert diff_operations({f"{ENTERPRISE}:department": None}, user(), OWN) == {}


def test_unsupported_paths_are_the_mapped_ones_the_schemas_do_not_declare():
    core = {
        "id": "urn:ietf:params:scim:schemas:core:2.0:User",
        "attributes": [{"name": n} for n in ("userName", "displayName", "title", "active")],
    }
    missing = unsupported_paths([core])
    assert f"{GENESYS}:routingSkills" in missing and f"{ENTERPRISE}:dateHire" in missing
    assert "userName" not in missing and "externalId" not in missing
    assert unsupported_paths(None) == ()
    assert set(missing) | {"userName", "displayName", "title", "active", "externalId"} == set(
        MANAGED_PATHS
    )


@pytest.mark.parametrize("authoritative", [False, True])
def test_ownership_round_trips_through_a_batch_file(authoritative):
    own = Ownership(("work",), ("User",), authoritative)
    assert Ownership.from_dict(own.to_dict()) == own
    assert Ownership.from_dict(None) == Ownership()
