# Where a benchmark's work goes: CPU time per process of the stack and
# PostgreSQL's WAL, read before and after a run and divided by the units of
# work done (checkouts, transactions). Sourced, not executed.
#
# On a machine whose CPUs are saturated, throughput is CPUs / (CPU per unit),
# so these figures say which process a change has to make cheaper; WAL
# records per unit count the row and index writes PostgreSQL did for it.

# cost_cpu_snap FILE: "pid name ticks" for the stack's processes. Process
# totals in /proc/PID/stat include every thread, live or exited; a process
# that starts and ends between two snapshots (an autovacuum worker) is not
# seen.
cost_cpu_snap() {
  local p cmd name
  for p in /proc/[0-9]*; do
    { cmd=$(tr '\0' ' ' < "$p/cmdline"); } 2>/dev/null || continue
    case $cmd in
      "postgres: portcullis_gateway "*) name=postgres:gateway ;;
      "postgres: portcullis_vault "*) name=postgres:vault ;;
      "postgres: portcullis_admin "*) continue ;; # this script's own psql
      "postgres: "*|*/bin/postgres\ *) name=postgres:other ;;
      */gatewayd\ *|*/vaultd\ *|*/sandbox-*) name=${cmd%% *}; name=${name##*/} ;;
      *) continue ;;
    esac
    # fields after "(comm) ": utime and stime are the 12th and 13th; a
    # process can end between the two reads (a backend, an autovacuum
    # worker), which must not end the benchmark (set -e, pipefail)
    { sed 's/^.*) //' "$p/stat" 2>/dev/null || true; } | awk -v pid="${p#/proc/}" -v n="$name" \
      '{ print pid, n, $12 + $13 }'
  done > "$1"
}

# cost_cpu_report BEFORE AFTER UNITS: milliseconds of CPU per unit by
# process name, largest first, and their total.
cost_cpu_report() {
  awk -v units="$3" -v hz="$(getconf CLK_TCK)" '
    FNR == NR { before[$1] = $3; next }
    { used[$2] += $3 - (($1 in before) ? before[$1] : 0) }
    END {
      for (n in used) { ms = used[n] * 1000 / hz / units; total += ms
                        printf "    %-20s %6.3f ms\n", n, ms }
      printf "    %-20s %6.3f ms\n", "total", total
    }' "$1" "$2" | sort -k2 -n -r
}

# cost_wal_snap BASE SECRETS: "records fpi bytes" of the whole cluster so far
cost_wal_snap() {
  pc_psql_admin "$1" "$2" postgres -Atc \
    'SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal' | tr '|' ' '
}

# cost_wal_report "BEFORE" "AFTER" UNITS: WAL records, full-page images and
# kilobytes per unit
cost_wal_report() {
  awk -v a="$1" -v b="$2" -v units="$3" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    printf "%.1f records, %.2f full-page images, %.1f KB", (y[1] - x[1]) / units,
           (y[2] - x[2]) / units, (y[3] - x[3]) / 1024 / units }'
}

# cost_waits_sample BASE SECRETS OUT: samples what the gateway's busy
# PostgreSQL backends are doing (running, or the wait event they sleep on)
# twice a second until killed; one line per backend per sample. Run it
# in the background around a load. One psql session repeats the query
# (\watch): a psql started per sample (Debian's Perl wrapper, a SCRAM
# login, a new backend) cost about 3% of the machine, taken from the load
# it measures. exec, so that killing this job stops psql itself.
cost_waits_sample() {
  PGPASSWORD=$(cat "$2/db_admin") exec psql -X -q -At -h "$1/sock" -U portcullis_admin \
    -d postgres >> "$3" 2>/dev/null <<'SQL'
SELECT CASE WHEN wait_event IS NULL THEN 'running'
  ELSE wait_event_type || ':' || wait_event END FROM pg_stat_activity
  WHERE usename = 'portcullis_gateway' AND state = 'active'
\watch 0.5
SQL
}

# cost_waits_report FILE: the share of busy-backend samples per state,
# largest first (states under 1% folded into "other").
cost_waits_report() {
  sort "$1" | uniq -c | sort -rn | awk '
    { n[NR] = $1; s[NR] = $2; total += $1 }
    END {
      if (total == 0) { print "    (no samples)"; exit }
      for (i = 1; i <= NR; i++)
        if (n[i] * 100 / total >= 1) printf "    %-28s %5.1f%%\n", s[i], n[i] * 100 / total
        else other += n[i]
      if (other) printf "    %-28s %5.1f%%\n", "other", other * 100 / total
      printf "    (%d samples of busy backends)\n", total
    }'
}
