package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable/iterabletest"
)

// spaceLimit is a way to run out of space under layover serve and to give
// the space back while it runs.
type spaceLimit struct {
	name string
	// setup prepares dir and returns the command line that wraps serve.
	setup func(t *testing.T, dir string) []string
	// grow gives space back to the running serve process.
	grow func(t *testing.T, dir string, serve *process)
	// wantError is a substring of the logged store error.
	wantError string
}

// spaceLimits are a full tmpfs (needs mount, so root) and a file size
// limit (needs prlimit), which fail SQLite's writes with ENOSPC and EFBIG.
func spaceLimits() []spaceLimit {
	return []spaceLimit{
		{name: "full tmpfs", wantError: "database or disk is full",
			setup: func(t *testing.T, dir string) []string {
				mountTmpfs(t, dir, "size=1m")
				return nil
			},
			grow: func(t *testing.T, dir string, _ *process) {
				if out, err := exec.Command("mount", "-o", "remount,size=16m", dir).CombinedOutput(); err != nil {
					t.Fatalf("grow tmpfs: %v: %s", err, out)
				}
			}},
		{name: "file size limit", wantError: "disk I/O error",
			setup: func(t *testing.T, dir string) []string {
				if _, err := exec.LookPath("prlimit"); err != nil {
					t.Skip("prlimit (util-linux) is not installed")
				}
				return []string{"prlimit", "--fsize=1048576:unlimited", "--"}
			},
			grow: func(t *testing.T, _ string, serve *process) {
				pid := strconv.Itoa(serve.cmd.Process.Pid)
				if out, err := exec.Command("prlimit", "--pid", pid, "--fsize=unlimited:unlimited").CombinedOutput(); err != nil {
					t.Fatalf("raise the file size limit: %v: %s", err, out)
				}
			}},
	}
}

// mountTmpfs mounts a tmpfs with opts on dir until the test ends, or
// skips the test when mounting is not allowed.
func mountTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { unmount(t, dir) })
}

// unmount unmounts dir, lazily when a process still has files open in it.
func unmount(t *testing.T, dir string) {
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
			t.Errorf("umount %s: %v: %s; %s", dir, err, out, out2)
		}
	}
}

// TestDiskFull fills the data folder's space under a running serve and
// checks that POSTs get 503 with Retry-After and one clear log line. Then
// it gives the space back and checks that serve stores again without a
// restart and that every acknowledged batch is delivered.
func TestDiskFull(t *testing.T) {
	for _, limit := range spaceLimits() {
		t.Run(limit.name, func(t *testing.T) {
			testDiskFull(t, limit)
		})
	}
}

func testDiskFull(t *testing.T, limit spaceLimit) {
	dest := newDestination(t, iterabletest.Options{RateLimit: -1})
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	wrapper := limit.setup(t, dir)
	data := filepath.Join(dir, "data")
	env := layoverEnv(data, dest.URL)
	serve := startServe(t, env, wrapper...)

	pad := map[string]any{"pad": strings.Repeat("p", 48<<10)}
	acked := &workload{byID: map[string]*eventSpec{}}
	var ackedIDs []string
	var unavailable []*batchSpec
	started := time.Now()
	for n := 0; len(unavailable) < 3; n++ {
		if n == 200 {
			t.Fatalf("200 POSTs of 48 KiB all stored; the space limit did not apply")
		}
		b, res := postPadded(t, serve.base, fmt.Sprintf("f%03d", n), pad)
		switch {
		case res.status == 200:
			keep(acked, b)
			ackedIDs = append(ackedIDs, res.id)
		case res.status == 503 && res.retryAfter != "":
			unavailable = append(unavailable, b)
		default:
			t.Fatalf("POST with no space left: HTTP %d, Retry-After %q, %v; want 503 with Retry-After",
				res.status, res.retryAfter, res.err)
		}
	}
	full := time.Since(started)
	checkStoreFailedLog(t, serve.out.String(), limit.wantError, full)

	limit.grow(t, dir, serve)
	for n := range 5 {
		b, res := postPadded(t, serve.base, fmt.Sprintf("g%03d", n), pad)
		if res.status != 200 {
			t.Fatalf("POST %d after space returned: HTTP %d, %v\n%s", n, res.status, res.err, serve.out.String())
		}
		keep(acked, b)
		ackedIDs = append(ackedIDs, res.id)
	}
	if !strings.Contains(serve.out.String(), `msg="store recovered"`) {
		t.Errorf("serve logged no recovery after space returned:\n%s", serve.out.String())
	}
	serve.stop(t)
	lost := missing(ackedIDs, storedMessages(t, data))

	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("forward exited with %d\n%s", code, out)
	}
	st, rejected := queueEnd(t, data)
	res := checkEnd(t, endState{work: acked, dest: dest, rejected: rejected, stats: st}, row{
		Group: "storage", Scenario: "disk full (" + limit.name + "), then space returns",
		Trials: len(unavailable), Acked: len(acked.Batches), BatchesLost: lost,
		Note: fmt.Sprintf("%d POSTs answered 503 with Retry-After; %d of their events reached Iterable later",
			len(unavailable), deliveredCount(dest, unavailable)),
	})
	if lost > 0 {
		t.Errorf("%d of %d acknowledged batches are missing from the queue", lost, len(ackedIDs))
	}
	record(t, res)
}

// postPadded posts one base batch with a padding field that the mapping
// ignores.
func postPadded(t *testing.T, base, prefix string, pad map[string]any) (*batchSpec, postResult) {
	t.Helper()
	w := &workload{byID: map[string]*eventSpec{}}
	b := w.add(prefix, baseUsers()[0])
	b.Body = encodeBatch(0, b.Events, pad)
	return b, post(context.Background(), base, b.Body)
}

// keep adds an acknowledged batch to w.
func keep(w *workload, b *batchSpec) {
	w.Batches = append(w.Batches, b)
	for _, ev := range b.Events {
		w.byID[ev.ID] = ev
	}
}

// missing counts the ids that are not in stored.
func missing(ids []string, stored map[string][]byte) int {
	n := 0
	for _, id := range ids {
		if _, ok := stored[id]; !ok {
			n++
		}
	}
	return n
}

// deliveredCount returns how many events of batches reached Iterable.
func deliveredCount(dest *destination, batches []*batchSpec) int {
	stored := dest.storedIDs()
	n := 0
	for _, b := range batches {
		for _, ev := range b.Events {
			n += stored[ev.ID]
		}
	}
	return n
}

// checkStoreFailedLog checks that serve logged the store failure, with
// the error, at most once per 5 seconds (the default failure log
// interval).
func checkStoreFailedLog(t *testing.T, log, wantError string, elapsed time.Duration) {
	t.Helper()
	var lines []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="store failed"`) {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("serve logged no store failure:\n%s", log)
	}
	if maxLines := 1 + int(elapsed/(5*time.Second)); len(lines) > maxLines {
		t.Errorf("serve logged %d store failures in %s, want at most %d:\n%s", len(lines), elapsed, maxLines, log)
	}
	if !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], wantError) {
		t.Errorf("store failure line %q, want level ERROR and %q", lines[0], wantError)
	}
	t.Logf("log line: %s", lines[0])
}
