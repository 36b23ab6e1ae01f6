package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// builds holds the commands that Command built in this test process.
var builds struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string
	errs  map[string]error
}

// Command builds the command of this module in pkg, a path relative to the
// module root such as "cmd/layover", once per test process, and returns the
// path of the binary. Call RemoveCommands from TestMain to delete it.
func Command(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if path, ok := builds.paths[pkg]; ok {
		return path
	}
	if err, ok := builds.errs[pkg]; ok {
		t.Fatal(err)
	}
	path, err := build(pkg)
	if err != nil {
		if builds.errs == nil {
			builds.errs = map[string]error{}
		}
		builds.errs[pkg] = err
		t.Fatal(err)
	}
	if builds.paths == nil {
		builds.paths = map[string]string{}
	}
	builds.paths[pkg] = path
	return path
}

func build(pkg string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	root, ok := moduleRoot(wd)
	if !ok {
		return "", fmt.Errorf("build %s: no go.mod in %s or its parents", pkg, wd)
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "layover-test-bin-"); err != nil {
			return "", fmt.Errorf("build %s: %w", pkg, err)
		}
	}
	path := filepath.Join(builds.dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", path, "./"+filepath.ToSlash(pkg))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./%s: %v\n%s", pkg, err, out)
	}
	return path, nil
}

// RemoveCommands deletes the binaries that Command built.
func RemoveCommands() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
}

// SyncBuffer is a bytes.Buffer that several goroutines may write, such as
// the stdout and stderr copiers of a child process.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
