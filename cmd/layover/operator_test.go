package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// storeRaw puts a body into the SQLite queue in dir without going through
// ingest, as a corrupted or foreign message would arrive.
func storeRaw(t *testing.T, dir string, body string) {
	t.Helper()
	q, err := sqlite.Open(context.Background(), dir, queue.Options{})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	if _, err := q.Send(context.Background(), []byte(body)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func TestDeadLetterCommands(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	env := testEnv(dir, simURL, "LAYOVER_MAX_RECEIVE_COUNT=2", "LAYOVER_VISIBILITY_TIMEOUT=1s", "LAYOVER_RETRY_BUDGET=500ms")
	storeRaw(t, dir, `{"events": [`)

	for run := range 3 {
		if code, out := runLayover(t, env, "forward"); code != 0 {
			t.Fatalf("forward run %d: exit %d\n%s", run, code, out)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	_, out := runLayover(t, env, "queue", "stats")
	if !strings.Contains(out, "dead-lettered:  1") {
		t.Fatalf("queue stats after 3 runs, want 1 dead-lettered:\n%s", out)
	}

	code, out := runLayover(t, env, "dlq", "list")
	if code != 0 {
		t.Fatalf("dlq list: exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("dlq list printed %d lines, want a header and one message:\n%s", len(lines), out)
	}
	id := strings.Fields(lines[1])[0]

	code, out = runLayover(t, env, "dlq", "show", id)
	if code != 0 || !strings.Contains(out, `{"events": [`) {
		t.Errorf("dlq show %s: exit %d, want the stored body\n%s", id, code, out)
	}
	code, out = runLayover(t, env, "dlq", "show", "-data-dir", dir, id)
	if code != 0 || !strings.Contains(out, `{"events": [`) {
		t.Errorf("dlq show -data-dir DIR %s: exit %d, want the stored body\n%s", id, code, out)
	}
	if code, out = runLayover(t, env, "dlq", "show", "no-such-id"); code == 0 || !strings.Contains(out, "dlq list") {
		t.Errorf("dlq show of an unknown id: exit %d, want an error naming dlq list\n%s", code, out)
	}

	code, out = runLayover(t, env, "dlq", "redrive")
	if code != 0 || !strings.Contains(out, "redriven 1 of 1") {
		t.Errorf("dlq redrive: exit %d, want progress\n%s", code, out)
	}
	_, out = runLayover(t, env, "queue", "stats")
	if !strings.Contains(out, "visible:        1") || !strings.Contains(out, "dead-lettered:  0") {
		t.Errorf("queue stats after redrive, want 1 visible and none dead-lettered:\n%s", out)
	}

	if code, out = runLayover(t, env, "dlq", "purge"); code != exitUsage || !strings.Contains(out, "-yes") {
		t.Errorf("dlq purge without -yes: exit %d, want %d and a hint\n%s", code, exitUsage, out)
	}
}

func TestOperatorCommandsNameDataFolderProblems(t *testing.T) {
	_, simURL := startSimulator(t)
	missing := t.TempDir() + "/absent"
	code, out := runLayover(t, testEnv(missing, simURL), "queue", "stats")
	if code == 0 || !strings.Contains(out, "does not exist") || !strings.Contains(out, "LAYOVER_DATA_DIR") {
		t.Errorf("queue stats on a missing folder: exit %d\n%s", code, out)
	}

	empty := t.TempDir()
	code, out = runLayover(t, testEnv(empty, simURL), "queue", "stats")
	if code == 0 || !strings.Contains(out, "no Layover queue found") {
		t.Errorf("queue stats on a folder without a queue: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(empty, sqlite.DatabaseFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("queue stats created %s in a folder without a queue: stat error %v", sqlite.DatabaseFile, err)
	}

	dir := t.TempDir()
	env := testEnv(dir, simURL)
	serve := startServe(t, env)
	code, out = runLayover(t, env, "dlq", "list")
	if code == 0 || !strings.Contains(out, "in use") {
		t.Errorf("dlq list while serve holds the folder: exit %d\n%s", code, out)
	}
	serve.stop(t)
}

// TestOutageKeepsBatchesOutOfDeadLetters runs forward more often than the
// maximum receive count while Iterable is down or failing, then once it is
// back.
func TestOutageKeepsBatchesOutOfDeadLetters(t *testing.T) {
	failing, failingURL := startSimulator(t)
	if err := failing.InjectFault(iterabletest.Fault{Status: 502, Body: iterabletest.BadGatewayJSON}); err != nil {
		t.Fatal(err)
	}
	down, downURL := startSimulator(t)
	down.Close()

	dir := t.TempDir()
	extra := []string{"LAYOVER_MAX_RECEIVE_COUNT=2", "LAYOVER_RETRY_BUDGET=300ms"}
	serve := startServe(t, testEnv(dir, failingURL, extra...))
	for _, name := range []string{"ios-session.json", "android-object-identities.json"} {
		if status, body := post(t, serve.base, webhookKey, sample(t, name)); status != 200 {
			t.Fatalf("POST %s: HTTP %d %s", name, status, body)
		}
	}
	serve.stop(t)

	for run, url := range []string{failingURL, downURL, failingURL, downURL, failingURL} {
		code, out := runLayover(t, testEnv(dir, url, extra...), "forward")
		if code != exitUnavailable {
			t.Fatalf("forward run %d against a failing Iterable: exit %d, want %d\n%s", run, code, exitUnavailable, out)
		}
	}
	_, out := runLayover(t, testEnv(dir, failingURL), "queue", "stats")
	if !strings.Contains(out, "visible:        2") || !strings.Contains(out, "dead-lettered:  0") {
		t.Fatalf("after 5 failed runs, want 2 visible and none dead-lettered:\n%s", out)
	}

	sim, url := startSimulator(t)
	if code, out := runLayover(t, testEnv(dir, url, extra...), "forward"); code != 0 {
		t.Fatalf("forward after recovery: exit %d\n%s", code, out)
	}
	if got := sim.EventCount(iterabletest.DefaultAPIKey); got != 10 {
		t.Errorf("after recovery the simulator has %d events, want 10", got)
	}
}

func TestDeadLetterHelpPerCommand(t *testing.T) {
	env := testEnv(t.TempDir(), "http://127.0.0.1:1")
	cases := []struct {
		args    []string
		want    string
		notWant string
	}{
		{[]string{"dlq", "-h"}, "redrive", ""},
		{[]string{"dlq", "list", "-h"}, "-limit", "-yes"},
		{[]string{"dlq", "purge", "-h"}, "-yes", "-limit"},
		{[]string{"dlq", "show", "-h"}, "usage: layover dlq show ID", "-limit"},
	}
	for _, c := range cases {
		code, out := runLayover(t, env, c.args...)
		if code != exitOK {
			t.Errorf("layover %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, exitOK, out)
		}
		if !strings.Contains(out, c.want) {
			t.Errorf("layover %s lacks %q:\n%s", strings.Join(c.args, " "), c.want, out)
		}
		if c.notWant != "" && strings.Contains(out, c.notWant) {
			t.Errorf("layover %s offers %q, a flag of another command:\n%s", strings.Join(c.args, " "), c.notWant, out)
		}
	}
	if code, out := runLayover(t, env, "dlq", "show"); code != exitUsage || !strings.Contains(out, "missing message id") {
		t.Errorf("dlq show without an id: exit %d, want %d and the missing id\n%s", code, exitUsage, out)
	}
}

func TestServeChecksIterableKeyBeforeQueue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := testEnv(dir, "http://127.0.0.1:1", "LAYOVER_SCHEDULE=@hourly", "ITERABLE_API_KEY=")
	code, out := runLayover(t, env, "serve")
	if code != exitUsage || !strings.Contains(out, "ITERABLE_API_KEY") {
		t.Errorf("serve without an Iterable key: exit %d, want %d naming ITERABLE_API_KEY\n%s", code, exitUsage, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve without an Iterable key created or opened the data folder: stat error %v", err)
	}
	if strings.Contains(out, "queue opened") {
		t.Errorf("serve opened the queue before it checked the key:\n%s", out)
	}
}

// TestOperatorCommandsFollowServeRetention runs an operator command with a
// shorter retention than serve's, as from a shell with other settings. It
// must use serve's, which the queue package's tests show keeps messages.
func TestOperatorCommandsFollowServeRetention(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	serve := startServe(t, testEnv(dir, simURL, "LAYOVER_RETENTION=200h"))
	serve.stop(t)

	code, out := runLayover(t, testEnv(dir, simURL, "LAYOVER_RETENTION=1m"), "queue", "stats")
	if code != 0 {
		t.Fatalf("queue stats: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "recorded=200h0m0s") || !strings.Contains(out, "given=1m0s") {
		t.Errorf("queue stats with a 1m retention did not say it uses serve's 200h:\n%s", out)
	}
}

func TestOperatorCommandArguments(t *testing.T) {
	env := testEnv(t.TempDir(), "http://127.0.0.1:1")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"queue", "-h"}, exitOK, "usage: layover queue stats"},
		{[]string{"rejected", "-h"}, exitOK, "usage: layover rejected list"},
		{[]string{"dlq", "list", "-limit", "0"}, exitUsage, "invalid -limit 0"},
		{[]string{"rejected", "list", "-limit", "-1"}, exitUsage, "invalid -limit -1"},
		{[]string{"version", "extra"}, exitUsage, "no arguments"},
		{[]string{"queue", "stats", "-retention", "30s"}, 1, "no Layover queue found"},
	}
	for _, c := range cases {
		code, out := runLayover(t, env, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("layover %s: exit %d, want %d and %q\n%s", strings.Join(c.args, " "), code, c.code, c.want, out)
		}
	}
}

func TestFlagOverridesInvalidEnvironment(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	storeRaw(t, dir, `{"events": []}`)
	env := testEnv(dir, simURL, "LAYOVER_RETENTION=bad")

	code, out := runLayover(t, env, "queue", "stats")
	if code != exitUsage || !strings.Contains(out, `invalid LAYOVER_RETENTION="bad"`) {
		t.Errorf("queue stats with LAYOVER_RETENTION=bad: exit %d, want %d naming the variable\n%s", code, exitUsage, out)
	}
	code, out = runLayover(t, env, "queue", "stats", "-retention", "96h")
	if code != 0 {
		t.Errorf("queue stats -retention 96h with LAYOVER_RETENTION=bad: exit %d, want 0\n%s", code, out)
	}
}
