#!/usr/bin/env bash
# ctest fixture: one private PostgreSQL cluster for the whole test run, with a
# migrated template database that each integration test copies.
#   testpg.sh setup DIR GATEWAYCTL   |   testpg.sh cleanup DIR
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/pg.sh"

cmd=$1 dir=$2
case $cmd in
setup)
  gatewayctl=$3
  base=$(pc_pg_base "$dir/pg")
  if [ -d "$base/data" ]; then pc_pg_stop "$base" || true; rm -rf "$base/data" "$base/sock"; fi
  pc_pg_init "$base" "$dir/secrets"
  pc_pg_start "$base" "$dir/secrets"
  pc_psql_admin "$base" "$dir/secrets" postgres -c 'DROP DATABASE IF EXISTS portcullis_tmpl' >/dev/null
  pc_pg_createdb "$base" "$dir/secrets" portcullis_tmpl
  "$gatewayctl" --migrate-db "host=$base/sock dbname=portcullis_tmpl user=portcullis_admin" \
    --migrate-password-file "$dir/secrets/db_admin" migrate
  printf 'PGBASE=%s\nSECRETS=%s\nTEMPLATE=portcullis_tmpl\n' "$base" "$dir/secrets" > "$dir/env"
  echo "test PostgreSQL ready at $base/sock"
  ;;
cleanup)
  [ -f "$dir/env" ] || exit 0
  base=$(sed -n 's/^PGBASE=//p' "$dir/env")
  pc_pg_stop "$base" || true
  ;;
*) echo "usage: testpg.sh setup DIR GATEWAYCTL | cleanup DIR" >&2; exit 2 ;;
esac
