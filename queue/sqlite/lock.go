//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/layover-dev/layover/queue"
)

// dirLock is an exclusive flock(2) on the lock file of a data folder. The
// kernel releases it when the process exits, so a crash leaves no stale
// lock behind.
type dirLock struct {
	file *os.File
}

// lockDir takes the lock of dir without waiting. When another process (or
// another Queue of this process) holds it, the error wraps queue.ErrLocked
// and names the holder's process id.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}

	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		holder := readHolder(f)
		_ = f.Close()
		return nil, fmt.Errorf("data folder %s is in use by %s, which holds the lock on %s; "+
			"stop it or choose another data folder: %w", dir, holder, path, queue.ErrLocked)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}

	// The process id is only for the error message of the next opener.
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(pid, 0)
	}
	return &dirLock{file: f}, nil
}

// readHolder returns a description of the process named in the lock file.
func readHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return "another process"
	}
	return "process " + pid
}

// release unlocks the folder. The lock file stays, because removing it
// would let two processes lock two different files of the same name.
func (l *dirLock) release() error {
	if err := l.file.Close(); err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	return nil
}
