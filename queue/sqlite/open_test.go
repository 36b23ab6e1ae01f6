package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// helperEnv selects the role of a test binary started by a test.
const helperEnv = "LAYOVER_SQLITE_TEST_HELPER"

// startChild runs the test function named test of this binary as a child
// process, with env added to its environment, and returns it with its
// output lines. The child is killed when the test ends.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v=false")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child process %s: %v", test, err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout)
}

// startHelper runs this test binary as a helper process with role and dir
// and returns it once the helper printed "ready".
func startHelper(t *testing.T, role, dir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd, lines := startChild(t, "TestHelperProcess", helperEnv+"="+role, "LAYOVER_SQLITE_TEST_DIR="+dir)
	for lines.Scan() {
		if lines.Text() == "ready" {
			return cmd, lines
		}
	}
	t.Fatalf("helper process %s ended before it was ready: %v", role, lines.Err())
	return nil, nil
}

// TestHelperProcess is not a test: it is the body of the helper processes
// that other tests start, and returns at once in a normal test run.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(helperEnv)
	if role == "" {
		return
	}
	dir := os.Getenv("LAYOVER_SQLITE_TEST_DIR")
	switch role {
	case "hold":
		holdQueue(dir)
	case "fill-limited":
		fillLimitedDisk(dir)
	}
	os.Exit(0)
}

// holdQueue opens the queue in dir and keeps it open until stdin closes.
func holdQueue(dir string) {
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		os.Stdout.WriteString("open failed: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = q.Close()
}

func TestOpenLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	first := openTestQueue(t, dir, queue.Options{})

	start := time.Now()
	_, err := Open(context.Background(), dir, queue.Options{})
	if !errors.Is(err, queue.ErrLocked) {
		t.Fatalf("second Open of the same folder: error = %v, want queue.ErrLocked", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("second Open took %v to fail, want under 1s", elapsed)
	}
	if want := "process " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder, %q", err, want)
	}

	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	openTestQueue(t, dir, queue.Options{})
}

func TestOpenLockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	helper, _ := startHelper(t, "hold", dir)

	start := time.Now()
	_, err := Open(context.Background(), dir, queue.Options{})
	if !errors.Is(err, queue.ErrLocked) {
		t.Fatalf("Open while another process has the folder: error = %v, want queue.ErrLocked", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Open took %v to fail, want under 1s", elapsed)
	}
	if want := "process " + strconv.Itoa(helper.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder, %q", err, want)
	}

	// A killed holder leaves no stale lock: the kernel drops it.
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	openTestQueue(t, dir, queue.Options{})
}

func TestOpenForeignFile(t *testing.T) {
	cases := map[string][]byte{
		"text":         []byte("name,email\nada,ada@example.com\n"),
		"short":        []byte("SQLi"),
		"binary zeros": make([]byte, 4096),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DatabaseFile)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), dir, queue.Options{})
			if !errors.Is(err, ErrForeignDatabase) {
				t.Fatalf("Open: error = %v, want ErrForeignDatabase", err)
			}
			checkFileUnchanged(t, path, content)
		})
	}
}

func TestOpenForeignSQLiteDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DatabaseFile)
	db, err := sql.Open(driverName, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('ada')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = Open(context.Background(), dir, queue.Options{})
	if !errors.Is(err, ErrForeignDatabase) {
		t.Fatalf("Open: error = %v, want ErrForeignDatabase", err)
	}
	if !strings.Contains(err.Error(), "another application") {
		t.Errorf("error %q does not say that the database belongs to another application", err)
	}
	checkFileUnchanged(t, path, content)
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Error("Open left a write-ahead log beside a foreign database")
	}
}

func TestOpenDatabasePathIsFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, DatabaseFile), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), dir, queue.Options{})
	if !errors.Is(err, ErrForeignDatabase) {
		t.Fatalf("Open: error = %v, want ErrForeignDatabase", err)
	}
}

func TestOpenParentIsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), filepath.Join(file, "data"), queue.Options{})
	if err == nil {
		t.Fatal("Open of a folder inside a file succeeded")
	}
	if !strings.Contains(err.Error(), "create data folder") {
		t.Errorf("error %q does not say which step failed", err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(context.Background(), dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(driverName, filepath.Join(dir, DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = Open(context.Background(), dir, queue.Options{})
	if err == nil {
		t.Fatal("Open of a database with schema version 99 succeeded")
	}
	if !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("error %q does not name the schema version", err)
	}
}

// checkFileUnchanged checks that the file at path still has content.
func checkFileUnchanged(t *testing.T, path string, content []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("foreign file: %v", err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("Open changed the foreign file %s", path)
	}
}
