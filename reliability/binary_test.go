package reliability

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layover-dev/layover/internal/testenv"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// webhookKey is the API key that test servers accept.
const webhookKey = "reliability-webhook-key"

// layoverBinary builds cmd/layover once per test binary.
func layoverBinary(t testing.TB) string {
	t.Helper()
	return testenv.Command(t, "cmd/layover")
}

// layoverEnv returns the environment of a layover process with the data
// folder dir and the Iterable simulator at iterableURL.
func layoverEnv(dir, iterableURL string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"LAYOVER_API_KEYS=" + webhookKey,
		"LAYOVER_DATA_DIR=" + dir,
		"LAYOVER_SCHEDULE=off",
		"LAYOVER_RATE=10",
		"ITERABLE_API_KEY=" + iterabletest.DefaultAPIKey,
		"ITERABLE_BASE_URL=" + iterableURL,
	}
	return append(env, extra...)
}

// process is a running layover command.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	base string      // http://host:port of serve
	done chan struct{}
	err  error // the outcome of Wait, once done is closed
}

// startLayover starts the layover binary with args, and kills it when the
// test ends. wrapper, when not empty, is a command line that runs the
// binary, such as prlimit.
func startLayover(t testing.TB, env []string, wrapper []string, args ...string) *process {
	t.Helper()
	argv := append(append(append([]string{}, wrapper...), layoverBinary(t)), args...)
	p := &process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start layover %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// startServe starts layover serve on a free loopback port and waits until
// /readyz returns 200.
func startServe(t testing.TB, env []string, wrapper ...string) *process {
	t.Helper()
	p, err := tryServe(t, env, wrapper...)
	if err != nil {
		t.Fatalf("serve did not become ready: %v\n%s", err, p.out.String())
	}
	return p
}

// tryServe starts layover serve and returns an error when it exits or does
// not become ready within 20 seconds.
func tryServe(t testing.TB, env []string, wrapper ...string) (*process, error) {
	t.Helper()
	addr := freeAddr(t)
	p := startLayover(t, append(env, "LAYOVER_LISTEN="+addr), wrapper, "serve")
	p.base = "http://" + addr
	return p, p.waitFor("/readyz", 20*time.Second)
}

// waitFor waits until GET path returns 200, and returns an error when the
// process exits or the timeout passes first.
func (p *process) waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("serve exited: %v", p.err)
		default:
		}
		if getStatus(p.base+path) == http.StatusOK {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("GET %s did not return 200 within %s", path, timeout)
}

// getStatus returns the status of GET url, 0 when the request fails.
func getStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// freeAddr returns a loopback address with a port that was free.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// wait waits for the process to exit and returns its exit status, -1 when
// a signal ended it.
func (p *process) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("layover did not exit within %s\n%s", timeout, p.out.String())
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("wait for layover: %v", p.err)
	return 0
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("layover exited with %d after SIGTERM\n%s", code, p.out.String())
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// runLayover runs a layover command to completion and returns its exit
// status and output.
func runLayover(t testing.TB, env []string, args ...string) (int, string) {
	t.Helper()
	p := startLayover(t, env, nil, args...)
	code := p.wait(t, 60*time.Second)
	return code, p.out.String()
}

// postResult is the outcome of one POST /event-batch.
type postResult struct {
	status     int
	id         string // the stored message id on a 2xx
	retryAfter string
	err        error // a transport error, such as a refused connection
}

// post sends one webhook body.
func post(ctx context.Context, base string, body []byte) postResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/event-batch", bytes.NewReader(body))
	if err != nil {
		return postResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+webhookKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return postResult{err: err}
	}
	defer resp.Body.Close()
	res := postResult{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	var answer struct {
		ID string `json:"id"`
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return postResult{err: err}
	}
	if resp.StatusCode/100 == 2 && json.Unmarshal(data, &answer) == nil {
		res.id = answer.ID
	}
	return res
}

// postAll posts every batch of w and fails the test unless each gets a
// 2xx. It returns the message id of each event.
func postAll(t testing.TB, base string, w *workload) map[string]string {
	t.Helper()
	msgOf := map[string]string{}
	for i, body := range w.bodies() {
		res := post(context.Background(), base, body)
		if res.err != nil || res.id == "" {
			t.Fatalf("POST batch %d: HTTP %d, %v", i, res.status, res.err)
		}
		for _, ev := range w.Batches[i].Events {
			msgOf[ev.ID] = res.id
		}
	}
	return msgOf
}

// storedMessages reads the id and body of every message in the SQLite
// queue of dir without changing it, for tests that must not count a
// receive.
//
// NOTE: this reads the engine's tables directly, so it follows their
// schema.
func storedMessages(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	path := filepath.Join(dir, sqlite.DatabaseFile)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT m.id, b.body FROM messages AS m JOIN message_bodies AS b ON b.seq = m.seq`)
	if err != nil {
		t.Fatalf("read messages of %s: %v", path, err)
	}
	defer rows.Close()
	msgs := map[string][]byte{}
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		msgs[id] = body
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// queueEnd opens the queue in dir after every process has exited and
// returns its stats and rejected events.
func queueEnd(t testing.TB, dir string) (queue.Stats, []queue.Rejection) {
	t.Helper()
	ctx := context.Background()
	q, err := sqlite.Open(ctx, dir, queue.Options{})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := q.ListRejected(ctx, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return st, rejected
}

// syncBuffer collects a process's stdout and stderr.
type syncBuffer = testenv.SyncBuffer
