package main

import (
	"bytes"
	"context"
	"errors"
	"io"
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
)

// webhookKey is the API key the test servers accept.
const webhookKey = "test-webhook-key"

// TestMain runs the tests and removes the layover binary they built.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveCommands()
	os.Exit(code)
}

// layoverBinary builds the layover command once per test run.
func layoverBinary(t testing.TB) string {
	t.Helper()
	return testenv.Command(t, "cmd/layover")
}

// startSimulator starts an Iterable simulator on loopback with its rate
// limit off, so tests do not wait for pacing.
func startSimulator(t testing.TB) (*iterabletest.Server, string) {
	t.Helper()
	sim := iterabletest.New(iterabletest.Options{RateLimit: -1})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, url
}

// testEnv returns the environment of a layover process for a test.
func testEnv(dataDir, simURL string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"LAYOVER_API_KEYS=" + webhookKey,
		"LAYOVER_DATA_DIR=" + dataDir,
		"LAYOVER_SCHEDULE=off",
		"LAYOVER_RATE=10",
		"ITERABLE_API_KEY=" + iterabletest.DefaultAPIKey,
		"ITERABLE_BASE_URL=" + simURL,
	}
	return append(env, extra...)
}

// serveProcess is a running layover serve.
type serveProcess struct {
	cmd  *exec.Cmd
	base string
	log  *syncBuffer
	done chan error
}

// startServe starts layover serve and waits until /readyz returns 200.
func startServe(t testing.TB, env []string) *serveProcess {
	t.Helper()
	p := launchServe(t, env, "http")
	if err := waitReady(context.Background(), p.base+"/readyz", 20*time.Second); err != nil {
		t.Fatalf("serve not ready: %v\n%s", err, p.log.String())
	}
	return p
}

// launchServe starts layover serve on a free loopback port without waiting
// for it. scheme ("http" or "https") makes the process's base URL.
func launchServe(t testing.TB, env []string, scheme string) *serveProcess {
	t.Helper()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{base: scheme + "://" + addr, log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(layoverBinary(t), "serve")
	p.cmd.Env = append(env, "LAYOVER_LISTEN="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProcess) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, p.log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop within 20s\n%s", p.log.String())
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *serveProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// post sends one webhook body and returns the status and response body.
func post(t testing.TB, base, key string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/event-batch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /event-batch: %v", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// runLayover runs a layover command to completion and returns its exit
// status and combined output.
func runLayover(t testing.TB, env []string, args ...string) (int, string) {
	t.Helper()
	return runLayoverWithin(t, 5*time.Minute, env, args...)
}

// runLayoverWithin runs a layover command like runLayover, but kills it
// after timeout and fails the test, so that a command that should have
// exited at once cannot leave a server running.
func runLayoverWithin(t testing.TB, timeout time.Duration, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, layoverBinary(t), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("layover %s still running after %s\n%s", strings.Join(args, " "), timeout, out)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("run layover %s: %v", strings.Join(args, " "), err)
	return -1, ""
}

// sample reads a demo sample batch.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncBuffer collects a process's stdout and stderr.
type syncBuffer = testenv.SyncBuffer
