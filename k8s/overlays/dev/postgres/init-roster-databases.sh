#!/bin/bash
# Run once by the postgres image's entrypoint, on the first start with an empty volume:
# a role and a database per Roster service. Each role owns its database (and so may
# create the extensions the directory uses, pg_trgm and btree_gin, which are trusted),
# and no other role may connect to it.
set -euo pipefail

for service in directory staff audit; do
  variable="${service^^}_DB_PASSWORD"
  password="${!variable:?the Secret dev-postgres has no ${variable}}"
  psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="$service" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
