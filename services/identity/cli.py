"""Identity's command line: the first admin, and demo data for `make run`.

python -m services.identity.cli create-admin --login admin --name 管理员 --department ADMIN
    (password from --password or the IDENTITY_ADMIN_PASSWORD variable)
python -m services.identity.cli seed-demo      # idempotent: admin, supervisor, counter, an officer and an admin per department,
    and (with IDENTITY_DEMO_KIOSK_SECRET) the demo hall's kiosk KIOSK-371402-01 signing with that secret
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from kit.db import make_engine, make_sessionmaker
from kit.errors import Problem
from services.identity import kiosks
from services.identity.main import secret_box
from services.identity.officers import create_officer
from services.identity.passwords import Passwords
from services.identity.schemas import CreateOfficer, RegisterKiosk
from services.identity.settings import Settings

# The departments of the journeys (JOURNEYS.md): market regulation, real estate, tax, social
# insurance, public security (seals); health, civil affairs (高龄津贴, a 秒批 matter) and medical
# insurance. Codes are the platform's own short department codes.
DEMO_DEPARTMENTS = {
    "SCJGJ": "市场监督管理局",
    "BDCDJ": "不动产登记中心",
    "SWJ": "税务局",
    "RSJ": "人力资源和社会保障局",
    "GAJ": "公安局",
    "WJW": "卫生健康委员会",
    "MZJ": "民政局",  # 高龄津贴 (MZJ-GF-0002): the 秒批 matter's referred cases and sampled reviews
    "YBJ": "医疗保障局",
}
DEMO_PASSWORD = "demo-pass-2026"
# The demo hall (J9, ADR 0025): its 7×24 kiosk signs with IDENTITY_DEMO_KIOSK_SECRET (platform.toml:
# a make-run-only secret, never a deployment's).
DEMO_KIOSK = RegisterKiosk(device_id="KIOSK-371402-01", hall_code="HALL-371402", name="24小时自助服务终端",
                           location="历下区政务服务中心 一楼东侧 24小时自助区")  # fmt: skip


async def _create(settings: Settings, bodies: list[CreateOfficer], created_by: str) -> list[str]:
    engine = make_engine(settings.resolved_database_url())
    maker = make_sessionmaker(engine)
    passwords = Passwords(settings.password_time_cost, settings.password_memory_kib)
    created = []
    try:
        for body in bodies:
            async with maker() as session, session.begin():
                try:
                    await create_officer(session, passwords, body, created_by=created_by)
                    created.append(body.login)
                except Problem:
                    pass  # exists already: seeding is idempotent
    finally:
        await engine.dispose()
    return created


async def seed_kiosk(settings: Settings) -> str:
    """The demo hall's kiosk with the configured demo secret: created, already there, or skipped."""
    secret = settings.demo_kiosk_secret.get_secret_value()
    box = secret_box(settings)
    if not secret or box is None:
        return "skipped (IDENTITY_DEMO_KIOSK_SECRET or the secrets key not set)"
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await kiosks.insert(session, settings, box, DEMO_KIOSK, created_by="seed-demo", secret=secret)
        return "created"
    except Problem:
        return "already there"  # seeding is idempotent
    finally:
        await engine.dispose()


def demo_officers() -> list[CreateOfficer]:
    bodies = [
        CreateOfficer(login="admin", name="平台管理员", department="ADMIN", roles=["admin"], password=DEMO_PASSWORD),
        CreateOfficer(
            login="supervisor", name="电子监察员", department="JCZX", roles=["supervisor"], password=DEMO_PASSWORD
        ),
        # 一窗受理: the government service centre's counter, where real-name L4 is checked in person.
        CreateOfficer(
            login="counter", name="一窗受理窗口", department="ZWFW", roles=["counter"], password=DEMO_PASSWORD
        ),
        # 政务服务中心's admin: manages the halls' kiosks (and ZWFW's officers) beside the platform admin.
        CreateOfficer(
            login="zwfw.admin", name="政务服务中心管理员", department="ZWFW", roles=["admin"], password=DEMO_PASSWORD
        ),
    ]
    for code in DEMO_DEPARTMENTS:
        bodies.append(
            CreateOfficer(
                login=f"{code.lower()}.officer",
                name=f"{DEMO_DEPARTMENTS[code]}窗口",
                department=code,
                roles=["acceptor", "reviewer", "decider"],
                password=DEMO_PASSWORD,
            )
        )
        bodies.append(
            CreateOfficer(
                login=f"{code.lower()}.admin",
                name=f"{DEMO_DEPARTMENTS[code]}事项管理员",
                department=code,
                roles=["admin"],
                password=DEMO_PASSWORD,
            )
        )
    return bodies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    admin = sub.add_parser("create-admin", help="bootstrap the first admin officer")
    admin.add_argument("--login", required=True)
    admin.add_argument("--name", default="管理员")
    admin.add_argument("--department", default="ADMIN")
    admin.add_argument("--password", default=os.environ.get("IDENTITY_ADMIN_PASSWORD", ""))
    sub.add_parser("seed-demo", help="demo officers for make run (idempotent)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "create-admin":
        if not args.password:
            print("give --password or set IDENTITY_ADMIN_PASSWORD", file=sys.stderr)
            return 2
        body = CreateOfficer(
            login=args.login, name=args.name, department=args.department, roles=["admin"], password=args.password
        )
        created = asyncio.run(_create(settings, [body], created_by="cli"))
        print(f"admin {args.login}: {'created' if created else 'already exists'}")
        return 0
    created = asyncio.run(_create(settings, demo_officers(), created_by="seed-demo"))
    print(
        f"demo officers created: {len(created)} (password {DEMO_PASSWORD!r}; logins: admin, supervisor, counter, zwfw.admin, <dept>.officer, <dept>.admin)"
    )
    print(f"demo kiosk {DEMO_KIOSK.device_id} of {DEMO_KIOSK.hall_code}: {asyncio.run(seed_kiosk(settings))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
