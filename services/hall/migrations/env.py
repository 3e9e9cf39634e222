from kit.migrate import run_migrations
from services.hall.models import metadata

run_migrations(metadata)
