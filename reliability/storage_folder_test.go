package reliability

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// TestReadOnlyDataFolder starts serve and forward on a data folder with
// stored batches that has become read-only. Both must exit with an error
// that names the folder and leave every file as it was. Once the folder
// is writable again, every batch is delivered.
func TestReadOnlyDataFolder(t *testing.T) {
	dest := newDestination(t, iterabletest.Options{RateLimit: -1})
	root := t.TempDir()
	data := filepath.Join(root, "data")
	work := baseWorkload()
	serve := startServe(t, layoverEnv(data, dest.URL))
	postAll(t, serve.base, work)
	serve.stop(t)

	view, undo := readOnlyView(t, root, data)
	before := folderDigest(t, data)
	env := layoverEnv(view, dest.URL)
	for _, args := range [][]string{{"serve"}, {"forward"}} {
		code, out := runLayover(t, append(env, "LAYOVER_LISTEN=127.0.0.1:0"), args...)
		t.Logf("layover %s on a read-only folder: exit %d: %s", args[0], code, strings.TrimSpace(out))
		if code == 0 {
			t.Errorf("layover %s exited with 0 on a read-only data folder", args[0])
		}
		if !strings.Contains(out, view) ||
			!(strings.Contains(out, "read-only file system") || strings.Contains(out, "permission denied")) {
			t.Errorf("layover %s output does not name the folder %s and the cause:\n%s", args[0], view, out)
		}
	}
	if after := folderDigest(t, data); !maps.Equal(before, after) {
		t.Errorf("a read-only start changed the data folder:\nbefore %v\nafter  %v", before, after)
	}
	undo()

	if code, out := runLayover(t, layoverEnv(data, dest.URL), "forward"); code != 0 {
		t.Fatalf("forward on the writable folder exited with %d\n%s", code, out)
	}
	st, rejected := queueEnd(t, data)
	record(t, checkEnd(t, endState{work: work, dest: dest, rejected: rejected, stats: st}, row{
		Group: "storage", Scenario: "read-only data folder at start, then writable",
		Trials: 2, Acked: len(work.Batches), Note: "serve and forward exit 1 naming the folder; files unchanged",
	}))
}

// readOnlyView returns a read-only view of data and a function that ends
// it. As root, whom file modes do not stop, the view is a read-only bind
// mount. Otherwise data and its files lose their write permission.
func readOnlyView(t *testing.T, root, data string) (view string, undo func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		restore := chmodTree(t, data, 0o500, 0o400)
		t.Cleanup(restore)
		return data, restore
	}
	view = filepath.Join(root, "read-only")
	if err := os.Mkdir(view, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--bind", data, view}, {"-o", "remount,bind,ro", view}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Skipf("cannot make a read-only bind mount: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	done := false
	undo = func() {
		if !done {
			done = true
			unmount(t, view)
		}
	}
	t.Cleanup(undo)
	return view, undo
}

// chmodTree sets the mode of dir and of the files in it, and returns a
// function that makes them writable for their owner again.
func chmodTree(t *testing.T, dir string, dirMode, fileMode os.FileMode) func() {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Chmod(filepath.Join(dir, e.Name()), fileMode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		t.Fatal(err)
	}
	return func() {
		_ = os.Chmod(dir, 0o700)
		for _, e := range entries {
			_ = os.Chmod(filepath.Join(dir, e.Name()), 0o600)
		}
	}
}

// TestLockedDataFolder checks that a second serve and a forward cannot
// open a data folder that serve has open, nor one whose lock file another
// process holds. Each must exit with an error that names the folder and
// the fix, while the first serve keeps storing.
func TestLockedDataFolder(t *testing.T) {
	dest := newDestination(t, iterabletest.Options{RateLimit: -1})
	data := t.TempDir()
	env := layoverEnv(data, dest.URL)
	work := baseWorkload()
	first := startServe(t, env)
	holder := fmt.Sprintf("in use by process %d", first.cmd.Process.Pid)
	for _, args := range [][]string{{"serve"}, {"forward"}} {
		checkLockedOut(t, env, data, holder, args...)
	}
	postAll(t, first.base, work) // the first serve still stores
	first.stop(t)

	// A process that is not layover holds the lock.
	lock, err := os.OpenFile(filepath.Join(data, sqlite.LockFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	checkLockedOut(t, env, data, "in use by", "serve")
	lock.Close()

	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("forward after the lock was released exited with %d\n%s", code, out)
	}
	st, rejected := queueEnd(t, data)
	record(t, checkEnd(t, endState{work: work, dest: dest, rejected: rejected, stats: st}, row{
		Group: "storage", Scenario: "data folder locked by another process",
		Trials: 3, Acked: len(work.Batches), Note: "second serve, forward and a foreign lock holder exit 1 at once",
	}))
}

// checkLockedOut runs layover args and checks that it exits at once with
// an error naming the folder, the holder and the fix.
func checkLockedOut(t *testing.T, env []string, data, holder string, args ...string) {
	t.Helper()
	started := time.Now()
	code, out := runLayover(t, append(env, "LAYOVER_LISTEN=127.0.0.1:0"), args...)
	t.Logf("layover %s on a locked folder: exit %d in %s: %s", args[0], code,
		time.Since(started).Round(time.Millisecond), strings.TrimSpace(out))
	if code == 0 {
		t.Errorf("layover %s exited with 0 on a locked data folder", args[0])
	}
	for _, want := range []string{data, holder, "stop it or choose another data folder"} {
		if !strings.Contains(out, want) {
			t.Errorf("layover %s output lacks %q:\n%s", args[0], want, out)
		}
	}
}

// folderDigest returns the SHA-256 of every file under dir, and "dir" for
// folders, by path relative to dir. The lock file is left out, because it
// holds the id of the last process that locked the folder.
func folderDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	digest := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case rel == "." || rel == sqlite.LockFile:
			return nil
		case d.IsDir():
			digest[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		digest[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

// foreignFile is something other than a healthy Layover database in the
// place of layover.db.
type foreignFile struct {
	name string
	// make creates it in the data folder dir.
	make func(t *testing.T, dir string)
}

func foreignFiles() []foreignFile {
	write := func(data []byte) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, sqlite.DatabaseFile), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return []foreignFile{
		{"text file", write([]byte("notes: this is not a database\n"))},
		{"64 KiB of random bytes", write(random)},
		{"SQLite database of another application", makeOtherAppDatabase},
		{"folder", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, sqlite.DatabaseFile, "inside"), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{"Layover database cut to half its size", func(t *testing.T, dir string) {
			db := makeLayoverDatabase(t)
			write(db[:len(db)/2])(t, dir)
		}},
		{"Layover database with a damaged header", func(t *testing.T, dir string) {
			db := makeLayoverDatabase(t)
			for i := 16; i < 100; i++ {
				db[i] = 0xff
			}
			write(db)(t, dir)
		}},
		{"Layover database with a damaged messages table", makeDamagedTable},
	}
}

// makeOtherAppDatabase writes a SQLite database with a table of notes.
func makeOtherAppDatabase(t *testing.T, dir string) {
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)`,
		`INSERT INTO notes (text) VALUES ('buy milk'), ('call Ada')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// makeLayoverDatabase returns the bytes of a closed Layover database that
// holds the base workload.
func makeLayoverDatabase(t *testing.T) []byte {
	t.Helper()
	data, _ := makeLayoverDatabaseIn(t, t.TempDir())
	return data
}

// makeLayoverDatabaseIn creates a Layover database with the base workload
// in dir and returns its bytes and path once it is closed.
func makeLayoverDatabaseIn(t *testing.T, dir string) ([]byte, string) {
	t.Helper()
	ctx := context.Background()
	q, err := sqlite.Open(ctx, dir, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range baseWorkload().bodies() {
		if _, err := q.Send(ctx, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, sqlite.DatabaseFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, path
}

// makeDamagedTable writes a Layover database whose messages table has its
// root page overwritten, as a bad disk block would leave it.
func makeDamagedTable(t *testing.T, dir string) {
	data, source := makeLayoverDatabaseIn(t, t.TempDir())
	// Reading the page number opens the source read-only, which adds WAL
	// files beside it, so it is not done on the copy under test.
	db, err := sql.Open("sqlite", "file:"+source+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int
	err = db.QueryRow(`SELECT rootpage, (SELECT page_size FROM pragma_page_size())
FROM sqlite_schema WHERE name = 'messages'`).Scan(&root, &pageSize)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	page := data[(root-1)*pageSize : root*pageSize]
	for i := range page {
		page[i] = 0x5a
	}
	if err := os.WriteFile(filepath.Join(dir, sqlite.DatabaseFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestForeignDatabaseFile puts other files in the place of layover.db and
// starts serve three times on each, as a supervisor restarting a failing
// service would. Each start must fail with an error that names the file,
// or serve must stay up and return 503. The file must stay byte for byte
// as it was.
func TestForeignDatabaseFile(t *testing.T) {
	dest := newDestination(t, iterabletest.Options{RateLimit: -1})
	for _, f := range foreignFiles() {
		t.Run(f.name, func(t *testing.T) {
			data := t.TempDir()
			f.make(t, data)
			before := folderDigest(t, data)
			env := layoverEnv(data, dest.URL)
			path := filepath.Join(data, sqlite.DatabaseFile)
			outcomes := make([]string, 3)
			for i := range outcomes {
				outcomes[i] = startOnForeignFile(t, env, path)
			}
			after := folderDigest(t, data)
			if !maps.Equal(before, after) {
				t.Errorf("layover changed the data folder:\nbefore %v\nafter  %v", before, after)
			}
			record(t, row{Group: "storage", Scenario: "foreign file as layover.db: " + f.name, Trials: 3,
				Note: outcomes[0] + "; files unchanged: " + fmt.Sprint(maps.Equal(before, after))})
		})
	}
}

// startOnForeignFile starts serve on a data folder whose database file is
// foreign or damaged, and returns what happened. serve must exit with an
// error that names the file, or stay up without storing, so that /readyz
// and POST return 503 and forward exits with an error.
func startOnForeignFile(t *testing.T, env []string, path string) string {
	t.Helper()
	addr := freeAddr(t)
	p := startLayover(t, append(env, "LAYOVER_LISTEN="+addr), nil, "serve")
	p.base = "http://" + addr
	if err := p.waitFor("/healthz", 10*time.Second); err != nil {
		code := p.wait(t, 10*time.Second)
		out := strings.TrimSpace(p.out.String())
		if code == 0 || !strings.Contains(out, path) {
			t.Errorf("serve exited with %d without naming %s:\n%s", code, path, out)
		}
		return fmt.Sprintf("serve exits %d: %s", code, out[strings.LastIndex(out, "\n")+1:])
	}
	ready := getStatus(p.base + "/readyz")
	res := post(context.Background(), p.base, baseWorkload().bodies()[0])
	p.stop(t)
	code, out := runLayover(t, env, "forward")
	if ready == 200 || res.status == 200 || code == 0 {
		t.Errorf("on a damaged database /readyz answered %d, POST %d and forward exited with %d; "+
			"want 503, 503 and an error\n%s\n%s", ready, res.status, code, p.out.String(), out)
	}
	return fmt.Sprintf("serve starts; /readyz %d, POST %d (Retry-After %s); forward exits %d: %s",
		ready, res.status, res.retryAfter, code, strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
}
