"""scim2-server's InMemoryStorage with Genesys ids, no passwords, and an optional JSON file."""

import itertools
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from scim2_models import Resource, ResourceType
from scim2_server.memory import InMemoryStorage

from genesys_sandbox.rules import with_system_external_id

VERSION_NUMBER = re.compile(r'"(\d+)"')


class SandboxStorage(InMemoryStorage):
    """Keep users in memory and, with ``data_file``, in a JSON file rewritten after every write.

    Ids are UUIDs as on Genesys; each new user gets its ``x-pc:scimv2:v1`` external id
    (its id); passwords are never stored.
    """

    def __init__(self, data_file: Path | None = None) -> None:
        super().__init__()
        self.data_file = data_file

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        return resource.id or str(uuid.uuid4())

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        with self.lock:
            user_id = str(uuid.uuid4())
            data = with_system_external_id(resource.model_dump(), user_id)
            data["id"] = user_id
            created = super().create(resource_type, self._stored_form(resource, data))
            self.save()
            return created

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        with self.lock:
            stored = self._stored_form(resource, resource.model_dump())
            updated = super().update(resource_type, stored, expected_version=expected_version)
            self.save()
            return updated

    def delete(
        self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None
    ) -> None:
        with self.lock:
            super().delete(resource_type, resource_id, expected_version=expected_version)
            self.save()

    @staticmethod
    def _stored_form(resource: Resource[Any], data: dict[str, Any]) -> Resource[Any]:
        data.pop("password", None)
        return type(resource).model_validate(data)

    def has_user(self, user_id: str) -> bool:
        """Tell whether a user of this id exists, active or not."""
        with self.lock:
            return any(resource.id == user_id for resource in self.resources)

    def clear(self) -> None:
        """Delete every user."""
        with self.lock:
            self.resources = []
            self.save()

    def save(self) -> None:
        """Write every user to the data file, through a temporary file and an atomic rename."""
        if self.data_file is None:
            return
        with self.lock:
            users = [resource.model_dump() for resource in self.resources]
            temporary = self.data_file.with_name(f".{self.data_file.name}.tmp")
            temporary.write_text(json.dumps(users, indent=1), encoding="utf-8")
            os.replace(temporary, self.data_file)

    def load(self, model: type[Resource[Any]]) -> int:
        """Read the users of the data file, if it exists, and return how many there are."""
        if self.data_file is None or not self.data_file.exists():
            return 0
        users = [model.model_validate(u) for u in json.loads(self.data_file.read_text("utf-8"))]
        with self.lock:
            self.resources = users
            versions = [
                int(match.group(1))
                for user in users
                if user.meta and user.meta.version
                for match in [VERSION_NUMBER.search(user.meta.version)]
                if match
            ]
            self.versions = itertools.count(max(versions, default=0) + 1)
        return len(users)
