from kit.migrate import run_migrations
from kit.tests.sample_service.models import metadata

run_migrations(metadata)
