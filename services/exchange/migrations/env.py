from kit.migrate import run_migrations
from services.exchange.models import metadata

run_migrations(metadata)
