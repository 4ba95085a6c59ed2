"""The declared dependencies are the packages as they ship: every extra asked for exists,
and both database drivers are declared (by name, or as an extra that installs them)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        lines.extend(group)
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    "requirement", [r for r in _requirements() if r.extras], ids=lambda r: r.name
)
def test_every_requested_extra_is_provided_by_the_installed_package(
    requirement: Requirement,
) -> None:
    provided = {
        canonicalize_name(extra)
        for extra in metadata.metadata(requirement.name).get_all("Provides-Extra") or []
    }
    missing = {canonicalize_name(extra) for extra in requirement.extras} - provided
    assert not missing, f"{requirement.name} provides no extra {sorted(missing)}"


@pytest.mark.parametrize("driver", ["asyncpg", "aiosqlite"])
def test_each_database_driver_is_a_declared_dependency(driver: str) -> None:
    requirements = _requirements()
    declared = {canonicalize_name(r.name) for r in requirements}
    declared |= {canonicalize_name(extra) for r in requirements for extra in r.extras}
    assert driver in declared
    assert metadata.version(driver)
