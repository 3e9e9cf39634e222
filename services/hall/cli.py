"""Hall's command line: demo data for `make run`.

python -m services.hall.cli seed-demo     # idempotent: 德城区政务服务中心 and its windows

The hall opens 09:00–12:00 and 13:30–17:00 on working days, 30-minute slots of 6 bookings.
Windows A1–A3 are comprehensive (一窗受理, every matter); B1 serves the registration centre's
matters and B2 the public security bureau's ID-card matters (codes from the catalog's seed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kit.auth import Principal
from kit.db import make_engine, make_sessionmaker
from services.hall import halls
from services.hall.context import Context
from services.hall.models import Hall
from services.hall.schemas import HallIn, WindowIn
from services.hall.settings import Settings

DEMO_HALL = "HALL-371402"
SEED = Principal(subject="seed-demo", kind="officer", level=3, roles=("admin",), department="ADMIN")
HALL = HallIn(name="德城区政务服务中心", division_code="371402", address="山东省德州市德城区东方红路1号",
              queue_prefix="A", slot_minutes=30, slot_capacity=6, opening_hours=["09:00-12:00", "13:30-17:00"])  # fmt: skip
WINDOWS = {
    "A1": WindowIn(name="综合受理一号窗口", comprehensive=True),
    "A2": WindowIn(name="综合受理二号窗口", comprehensive=True),
    "A3": WindowIn(name="综合受理三号窗口", comprehensive=True),
    "B1": WindowIn(name="不动产登记窗口", department="BDCDJ",
                   matters=["BDCDJ-QR-0001", "BDCDJ-QR-0002", "BDCDJ-QR-0003", "BDCDJ-GG-0004"]),
    "B2": WindowIn(name="户籍身份证窗口", department="GAJ-DC",
                   matters=["GAJ-XK-0002", "GAJ-XK-0003", "GAJ-DC-QR-0004"]),
}  # fmt: skip


async def seed_demo(settings: Settings) -> str:
    """Make the demo hall and its windows unless the hall is there already; says what it did."""
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            if await session.get(Hall, DEMO_HALL) is not None:
                return f"{DEMO_HALL} already there"
            ctx = Context.from_settings(settings.model_copy(update={"sandbox": True}))
            await halls.put_hall(session, ctx, SEED, DEMO_HALL, HALL)
            for code, window in WINDOWS.items():
                await halls.put_window(session, SEED, DEMO_HALL, code, window)
            return f"{DEMO_HALL} {HALL.name} with windows {', '.join(WINDOWS)}"
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.hall.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed-demo", help="the demo hall and its windows (idempotent)")
    parser.parse_args(argv)
    print("hall demo: " + asyncio.run(seed_demo(Settings())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
