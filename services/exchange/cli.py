"""Exchange's command line: demo data for `make run`.

python -m services.exchange.cli seed-demo     # idempotent: the registration centre's partner and subscription

The partner ``dept-bdcdj`` pushes for ``BDCDJ`` (德州市不动产登记中心, the catalog's code) and signs
with EXCHANGE_DEMO_PARTNER_SECRET, the secret the sandbox department system is given too; its
system receives BDCDJ's webhooks at EXCHANGE_DEMO_WEBHOOK_URL (seed_outbound.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kit.auth import Principal
from kit.db import make_engine, make_sessionmaker
from services.exchange import partners
from services.exchange.context import ExchangeContext
from services.exchange.models import Partner
from services.exchange.seed_outbound import seed_subscriptions
from services.exchange.settings import Settings

DEMO_PARTNER = "dept-bdcdj"
DEMO_DEPARTMENT = "BDCDJ"
DEMO_NAME = "德州市不动产登记中心业务系统"
SEED = Principal(subject="seed-demo", kind="officer", level=3, roles=("admin",), department="ADMIN")


async def seed_demo(settings: Settings) -> str:
    """Make the demo partner with the demo secret as one of its active keys; says what it did."""
    secret = settings.demo_partner_secret.get_secret_value()
    if not secret:
        return "no EXCHANGE_DEMO_PARTNER_SECRET: demo partner skipped"
    ctx = ExchangeContext.for_tools(settings)
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            if await session.get(Partner, DEMO_PARTNER) is None:
                await partners.create_partner(session, ctx, SEED, partner_id=DEMO_PARTNER,
                                              department=DEMO_DEPARTMENT, name=DEMO_NAME, secret=secret)  # fmt: skip
                return f"demo partner {DEMO_PARTNER} made for {DEMO_DEPARTMENT}"
            found = await partners.active_secrets(session, ctx, partner_id=DEMO_PARTNER)
            if found is not None and any(known == secret for _, known in found[1]):
                return f"demo partner {DEMO_PARTNER} already there"
            return f"demo partner {DEMO_PARTNER} exists (revoked, or without the demo key): left as it is"
    finally:
        await engine.dispose()


async def _seed_subscriptions(settings: Settings) -> list[str]:
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await seed_subscriptions(session, ExchangeContext.for_tools(settings))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.exchange.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed-demo", help="the demo department partner for make run (idempotent)")
    parser.parse_args(argv)
    settings = Settings()
    print("exchange demo: " + asyncio.run(seed_demo(settings)))
    print("exchange demo subscriptions: " + (", ".join(asyncio.run(_seed_subscriptions(settings))) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
