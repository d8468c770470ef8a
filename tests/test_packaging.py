"""Our top-level packages are the ones imported, not unrelated PyPI packages of the same names."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name",
    [
        "crawler",
        "crawler.spiders",
        "crawler.replica",
        "pipelines",
        "storage",
        "storage.migrations",
        "storage.migrations.versions",
    ],
)
def test_package_comes_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None, f"{name} is a namespace package, not ours"
    assert Path(module.__file__).resolve().is_relative_to(REPO_ROOT), module.__file__


def test_migrations_ship_with_the_storage_package() -> None:
    from storage.db import MIGRATIONS_DIR

    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("0*.py")) == [
        "0001_initial.py",
        "0002_versions_dedupe_changes.py",
        "0003_scheduling.py",
        "0004_http_validators.py",
    ]
