"""Check that what pip/uv installed is exactly what constraints.txt pins (reproducible installs)."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def main(path: str) -> int:
    problems = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            if req.marker is None or req.marker.evaluate():
                problems.append(f"{req.name}: not installed (pinned {req.specifier})")
            continue
        if not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{req.name}: installed {installed}, pinned {req.specifier}")
    if problems:
        print("Installed packages differ from the pins:\n  " + "\n  ".join(problems))
        return 1
    print(f"install check: every package matches {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"))
