# Runs once, when the postgres container creates its data directory
# (sourced by the image's entrypoint): the services' own login. cavra_app
# owns nothing, is no superuser and no member of the owner; migration 0009
# grants it SELECT and INSERT (append-only evidence). The password comes
# from CAVRA_APP_DB_PASSWORD (docker/.env) as a psql variable, never pasted
# into SQL.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pw="${CAVRA_APP_DB_PASSWORD:?set CAVRA_APP_DB_PASSWORD in docker/.env}" <<'SQL'
CREATE ROLE cavra_app LOGIN PASSWORD :'pw'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION;
GRANT cavra_app TO CURRENT_USER;
SQL
