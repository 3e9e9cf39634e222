from kit.migrate import run_migrations
from services.express.models import metadata

run_migrations(metadata)
