from kit.migrate import run_migrations
from services.payment.models import metadata

run_migrations(metadata)
