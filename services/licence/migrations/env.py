from kit.migrate import run_migrations
from services.licence.models import metadata

run_migrations(metadata)
