"""Catalog's command line: demo data for `make run`.

python -m services.catalog.cli seed-demo     # idempotent: divisions, departments, matters, bundles
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kit.db import make_engine, make_sessionmaker
from services.catalog import loading, seed_data
from services.catalog.settings import Settings


async def seed_demo(database_url: str) -> int:
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as session, session.begin():
            await loading.upsert_directory(session, seed_data.DIVISIONS, seed_data.DEPARTMENTS)
            created = await loading.seed_matters(session, seed_data.MATTERS)
            await loading.upsert_bundles(session, seed_data.BUNDLES)
    finally:
        await engine.dispose()
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.catalog.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed-demo", help="demo catalog for make run (idempotent)")
    parser.parse_args(argv)
    created = asyncio.run(seed_demo(Settings().resolved_database_url()))
    print(f"catalog demo: {created} matters published ({len(seed_data.MATTERS)} in the demo set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
