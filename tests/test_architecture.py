"""The boundaries the design promises, checked: no service imports another, contracts don't drift,
migrations match the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from contracts.generate import drift
from kit.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Services never import each other KEPT" in result.stdout


def test_event_schemas_match_the_models():
    assert drift() == [], "run `make contracts` and commit contracts/"


@pytest.mark.parametrize(
    ("package", "models"),
    [
        ("services.identity", "services.identity.models"),
        ("services.catalog", "services.catalog.models"),
        ("services.caseflow", "services.caseflow.models"),
    ],
)
def test_migrations_match_the_models(package, models, tmp_path):
    import importlib

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(package, url)
    metadata = importlib.import_module(models).metadata
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == [], f"models changed without a migration: {diff}"
