from kit.migrate import run_migrations
from services.caseflow.models import metadata

run_migrations(metadata)
