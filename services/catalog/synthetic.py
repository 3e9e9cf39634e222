"""A large synthetic catalog for the benchmark: ``python -m services.catalog.synthetic N``.

Names are built from real matter vocabulary so pinyin and substring searches behave as they would
on a city's 40,000-odd guides; every guide is complete and realistic in size (materials, steps,
FAQ). Loads into the configured database (CATALOG_DATABASE_URL), migrated first.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys

from services.catalog.domain.guide import MATTER_TYPES, Guide
from services.catalog.domain.themes import THEMES

SUBJECTS = [
    "营业执照",
    "食品经营许可证",
    "药品经营许可证",
    "道路运输经营许可证",
    "建筑工程施工许可证",
    "排污许可证",
    "卫生许可证",
    "医疗机构执业许可证",
    "烟草专卖零售许可证",
    "出版物经营许可证",
    "民办学校办学许可证",
    "不动产权证书",
    "居民身份证",
    "户口",
    "结婚证",
    "社会保障卡",
    "失业保险金",
    "养老保险",
    "医疗保险",
    "住房公积金",
    "机动车驾驶证",
    "出入境通行证",
    "护照",
    "残疾人证",
    "老年人优待证",
    "特种设备使用登记",
    "广告发布登记",
    "商标质押",
    "危险化学品经营许可证",
    "消防安全检查",
    "人防工程",
    "林木采伐许可证",
    "取水许可",
    "河道采砂许可",
    "渔业捕捞许可证",
    "兽药经营许可证",
    "种子生产经营许可证",
    "劳务派遣经营许可",
]
ACTIONS = ["核发", "变更", "延续", "注销", "补领", "换领", "备案", "登记", "年检", "审批", "申领", "查询", "转移"]
SCOPES = ["", "（个人）", "（企业）", "（分支机构）", "（外资）", "（新设）", "（跨区域）", "（告知承诺制）"]
DEPARTMENTS = ["SCJGJ", "BDCDJ", "SWJ", "RSJ", "GAJ", "WJW", "MZJ", "YBJ"]
LICENCE_TYPES = ["resident_id_card", "business_licence", "household_register", "marriage_certificate", None, None]


def synthetic_guide(index: int, rng: random.Random) -> Guide:
    subject = rng.choice(SUBJECTS)
    name = f"{subject}{rng.choice(ACTIONS)}{rng.choice(SCOPES)}"
    department = DEPARTMENTS[index % len(DEPARTMENTS)]
    depth = rng.randint(1, 4)
    kind = rng.choice(["instant", "promised"])
    statutory = rng.choice([0, 5, 10, 15, 20, 30]) if kind == "instant" else rng.choice([10, 15, 20, 30, 60])
    materials = [
        {
            "name": f"材料{n}：{rng.choice(SUBJECTS)}",
            "required": rng.random() < 0.8,
            "forms": rng.sample(["original", "copy", "electronic"], rng.randint(1, 3)),
            "count": rng.randint(1, 3),
            "licence_type": rng.choice(LICENCE_TYPES),
        }
        for n in range(1, rng.randint(2, 8))
    ]
    return Guide.model_validate(
        {
            "code": f"SYN-{department}-{index:07d}",
            "name": name,
            "aliases": [f"{subject}办理"],
            "keywords": [subject, department],
            "matter_type": rng.choice(MATTER_TYPES),
            "department": department,
            "level": rng.choice(["province", "city", "county", "township"]),
            "legal_basis": [f"《{subject}管理办法》第{rng.randint(1, 60)}条"],
            "conditions": ["申请人符合法定条件", f"已取得{rng.choice(SUBJECTS)}"],
            "audience": rng.choice([["person"], ["enterprise"], ["person", "enterprise"]]),
            "themes": rng.sample(list(THEMES), rng.randint(0, 2)),
            "materials": materials,
            "statutory_limit_days": statutory,
            "promised_limit_days": None if kind == "instant" else max(1, statutory // 3),
            "kind": kind,
            "fees": [],
            "result": {"name": subject, "form": "document", "delivery": ["window", "electronic"]},
            "depth": depth,
            "max_visits": 0 if depth == 4 else rng.choice([0, 1, 2]),
            "online": depth >= 3 or rng.random() < 0.5,
            "express": rng.random() < 0.6,
            "min_level": rng.randint(1, 3),
            "steps": [
                {"name": "受理", "roles": ["acceptor"]},
                {"name": "审查", "roles": ["reviewer"]},
                {"name": "决定", "roles": ["decider"]},
            ],
            "faq": [{"question": f"{name}需要多久？", "answer": f"法定{statutory}个工作日。"}],
        }
    )


def generate(count: int, *, seed: int = 7) -> list[Guide]:
    rng = random.Random(seed)
    return [synthetic_guide(i, rng) for i in range(count)]


async def load(database_url: str, count: int, *, batch: int = 2000) -> None:
    """Migrated database + seed directory + ``count`` synthetic published matters."""
    from kit.db import make_engine, make_sessionmaker
    from services.catalog import loading, seed_data

    guides = generate(count)
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as session, session.begin():
            await loading.upsert_directory(session, seed_data.DIVISIONS, seed_data.DEPARTMENTS)
        for start in range(0, len(guides), batch):
            async with maker() as session, session.begin():
                await loading.bulk_publish(session, guides[start : start + batch])
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.catalog.synthetic")
    parser.add_argument("count", type=int)
    args = parser.parse_args(argv)
    from kit.migrate import upgrade
    from services.catalog.settings import Settings

    url = Settings().resolved_database_url()
    upgrade("services.catalog", url)
    asyncio.run(load(url, args.count))
    print(f"catalog: {args.count} synthetic matters loaded into {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
