#!/bin/sh
# One database per service, owned by the application role, created on the first start of an
# empty volume (docker-entrypoint-initdb.d runs only then). The list comes from POSTGRES_DATABASES
# in docker-compose.yml; a service added later to an existing volume needs
#   docker compose exec postgres createdb -U "$POSTGRES_USER" <name>
set -eu
for db in $(echo "${POSTGRES_DATABASES:-}" | tr ',' ' '); do
  echo "creating database $db"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
