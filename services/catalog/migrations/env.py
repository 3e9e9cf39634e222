from kit.migrate import run_migrations
from services.catalog.models import metadata

run_migrations(metadata)
