#!/usr/bin/env bash
# Installs the pgRouting baseline (PostgreSQL 15 + PostGIS 3 + pgRouting + osm2pgrouting + osmium-tool,
# Debian packages) and loads every road extract into the database `routing_bench` (created if missing),
# one schema per extract (monaco, oslo_east, heidelberg, porto).
#
#   bash bench/routing/setup-pgrouting.sh            # all extracts
#   ROUTING_BENCH_EXTRACTS="monaco porto" bash bench/routing/setup-pgrouting.sh
#
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), ROUTING_BENCH_DB (routing_bench),
# SAFECITY_ROADS_DIR (../shared/data/roads from the repo root), ROUTING_BENCH_TMP (the .osm intermediates;
# default ${TMPDIR:-/tmp}/safecity-pgrouting — never inside the repository).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
DB="${ROUTING_BENCH_DB:-routing_bench}"
ROADS_DIR="${SAFECITY_ROADS_DIR:-$REPO_ROOT/../shared/data/roads}"
case "$ROADS_DIR" in /*) ;; *) ROADS_DIR="$REPO_ROOT/$ROADS_DIR" ;; esac
WORK="${ROUTING_BENCH_TMP:-${TMPDIR:-/tmp}/safecity-pgrouting}"
EXTRACTS="${ROUTING_BENCH_EXTRACTS:-monaco oslo-east heidelberg porto}"
MAPCONFIG=/usr/share/osm2pgrouting/mapconfig_for_cars.xml

need_install=0
for pkg in postgresql-15-postgis-3 postgresql-15-pgrouting osm2pgrouting osmium-tool; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 1 ]; then
  echo "installing PostGIS, pgRouting, osm2pgrouting and osmium-tool (apt-get)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
    postgresql-15-postgis-3 postgresql-15-pgrouting osm2pgrouting osmium-tool
fi

if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  echo "creating database $DB"
  createdb "$DB"
fi
psql -q -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pgrouting;"

mkdir -p "$WORK"
for name in $EXTRACTS; do
  pbf="$ROADS_DIR/$name.osm.pbf"
  schema="${name//-/_}"
  if [ ! -f "$pbf" ]; then
    echo "skip $name: $pbf not found" >&2
    continue
  fi
  if psql -d "$DB" -tAc "SELECT count(*) FROM $schema.ways" >/dev/null 2>&1; then
    echo "$name: already loaded (schema $schema); drop the schema to reload"
    continue
  fi
  echo "$name: converting to .osm in $WORK"
  osmium cat -O "$pbf" -o "$WORK/$name.osm"
  psql -q -d "$DB" -c "CREATE SCHEMA IF NOT EXISTS $schema"
  echo "$name: osm2pgrouting into $DB.$schema"
  start=$(date +%s)
  osm2pgrouting -f "$WORK/$name.osm" -c "$MAPCONFIG" -d "$DB" -U "$PGUSER" -h "$PGHOST" -p "$PGPORT" \
    --schema "$schema" --clean >"$WORK/$name.osm2pgrouting.log" 2>&1 ||
    { tail -20 "$WORK/$name.osm2pgrouting.log" >&2; exit 1; }
  echo "$name: loaded in $(($(date +%s) - start)) s ($(psql -d "$DB" -tAc "SELECT count(*) FROM $schema.ways") ways)"
done
echo "pgRouting baseline ready in database $DB"
