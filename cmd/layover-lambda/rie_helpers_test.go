package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// riePackage is the command of the AWS Lambda Runtime Interface Emulator,
// a tool dependency of the module (see the tool line in go.mod).
const riePackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinaries builds this command as bootstrap, for the host's
// architecture, and the emulator, once per test run, and returns their
// folder.
func buildBinaries(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the Runtime Interface Emulator runs only on Linux, not %s", runtime.GOOS)
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "layover-lambda-")
		if binErr != nil {
			return
		}
		for _, args := range [][]string{
			{"build", "-o", filepath.Join(binDir, "bootstrap"), "."},
			{"build", "-o", filepath.Join(binDir, "aws-lambda-rie"), riePackage},
		} {
			cmd := exec.Command("go", args...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// emulator is a running Runtime Interface Emulator with the bootstrap.
type emulator struct {
	url    string // base URL of the invoke API
	output *lockedBuffer
}

// lockedBuffer collects the output of the emulator and the function.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startEmulator runs the emulator on two free loopback ports with the
// bootstrap and env added to the test's environment. Cleanup stops the
// emulator and the function process and, when the test failed, logs their
// output.
func startEmulator(t *testing.T, env map[string]string) *emulator {
	t.Helper()
	dir := buildBinaries(t)
	invokeAddr, runtimeAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(filepath.Join(dir, "aws-lambda-rie"),
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		filepath.Join(dir, "bootstrap"))
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// A process group of its own lets cleanup stop the function process
	// that the emulator started, too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", out)
		}
	})
	waitForListener(t, invokeAddr, out)
	return &emulator{url: "http://" + invokeAddr, output: out}
}

// freeAddr returns a loopback address with a port that is free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitForListener(t *testing.T, addr string, out *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("emulator did not listen on %s within 15s; output:\n%s", addr, out)
}

// invocation is the emulator's response to one invoke.
type invocation struct {
	status int
	body   []byte
}

// functionError returns the errorMessage of a failed invocation, or "".
func (inv invocation) functionError() string {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(inv.body, &e) == nil {
		return e.ErrorMessage
	}
	return ""
}

// invoke sends event to the function through the emulator's invoke API,
// the path that Lambda's Invoke API has.
func (e *emulator) invoke(t *testing.T, event any) invocation {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	client := &http.Client{Timeout: 3 * time.Minute}
	resp, err := client.Post(e.url+"/2015-03-31/functions/function/invocations", "application/json",
		bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read invoke response: %v", err)
	}
	return invocation{status: resp.StatusCode, body: body}
}
