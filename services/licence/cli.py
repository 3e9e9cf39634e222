"""Licence's command line: demo data for `make run`.

python -m services.licence.cli seed-demo     # idempotent: issuing departments and licence types
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kit.db import make_engine, make_sessionmaker
from services.licence import catalogue, seed_data
from services.licence.settings import Settings


async def seed_demo(database_url: str) -> int:
    """Load the demo issuers and licence types; returns how many types were new."""
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as session, session.begin():
            created = await catalogue.upsert_catalogue(session, seed_data.ISSUERS, seed_data.LICENCE_TYPES)
    finally:
        await engine.dispose()
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.licence.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed-demo", help="demo issuers and licence types for make run (idempotent)")
    parser.parse_args(argv)
    created = asyncio.run(seed_demo(Settings().resolved_database_url()))
    print(f"licence demo: {created} licence types new ({len(seed_data.LICENCE_TYPES)} in the demo set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
