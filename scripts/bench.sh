#!/usr/bin/env bash
# Runs the side-by-side benchmark of cmd/layover-bench with a throwaway
# PostgreSQL cluster on 127.0.0.1, so that layover serve on PostgreSQL is
# measured in the same invocation as the no-op ceiling, the one-sync-per-
# request baseline and layover serve on SQLite. Unlike the test cluster,
# this one runs with fsync=on, because the benchmark compares durable
# writes.
#
# Usage: bash scripts/bench.sh [layover-bench flags]
#   bash scripts/bench.sh            # the full comparison, about 3 minutes
#   bash scripts/bench.sh soak       # 10 minutes at half the maximum rate
# PostgreSQL is installed with apt-get when missing, and the cluster and
# its folder are removed on exit.
set -euo pipefail

# shellcheck source=scripts/test.sh
source "$(dirname "${BASH_SOURCE[0]}")/test.sh"

log() { printf 'bench.sh: %s\n' "$*" >&2; }

# free_port prints a TCP port on 127.0.0.1 that nothing listens on right
# now. test.sh's version needs Node.js, which the benchmark does not.
free_port() {
	local port _
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	die "found no free port on 127.0.0.1"
}

bench_main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	if [ "${1:-}" != soak ]; then
		ensure_postgres
		WORK=$(mktemp -d "${TMPDIR:-/tmp}/layover-bench.XXXXXX")
		chmod 755 "$WORK"
		PG_FSYNC=on start_postgres
		export LAYOVER_BENCH_POSTGRES_URL=$LAYOVER_TEST_POSTGRES_URL
	fi
	cd "$REPO"
	log "running go run ./cmd/layover-bench $*"
	go run ./cmd/layover-bench "$@"
}

bench_main "$@"
