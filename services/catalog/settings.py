"""Catalog's settings (env prefix CATALOG_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOG_", extra="ignore")

    service_name: str = "catalog"
    # Serve searches from the in-process index (see search_index); off = the same query in SQL.
    search_index: bool = True
