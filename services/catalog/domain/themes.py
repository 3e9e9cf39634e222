"""Directory themes: life events of a person and stages of an enterprise's life."""

from __future__ import annotations

THEMES: dict[str, dict[str, str]] = {
    # 个人生命周期 (life events)
    "birth": {"name": "出生", "audience": "person"},
    "education": {"name": "上学", "audience": "person"},
    "employment": {"name": "就业创业", "audience": "person"},
    "marriage": {"name": "婚育", "audience": "person"},
    "housing": {"name": "住房", "audience": "person"},
    "social_security": {"name": "社保医保", "audience": "person"},
    "travel": {"name": "出行", "audience": "person"},
    "retirement": {"name": "退休养老", "audience": "person"},
    "death": {"name": "身后事", "audience": "person"},
    # 企业生命周期 (enterprise lifecycle)
    "start_business": {"name": "开办企业", "audience": "enterprise"},
    "operating_permits": {"name": "经营许可", "audience": "enterprise"},
    "tax": {"name": "纳税缴费", "audience": "enterprise"},
    "hiring": {"name": "员工招聘与社保", "audience": "enterprise"},
    "real_estate": {"name": "不动产与建设", "audience": "enterprise"},
    "change": {"name": "变更", "audience": "enterprise"},
    "closing": {"name": "注销退出", "audience": "enterprise"},
}


def unknown_themes(themes: list[str]) -> list[str]:
    return [t for t in themes if t not in THEMES]
