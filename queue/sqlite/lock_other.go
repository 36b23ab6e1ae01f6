//go:build !unix

package sqlite

import "errors"

// dirLock would lock a data folder; this platform has no flock(2).
type dirLock struct{}

// lockDir returns an error: without a lock two processes could write the
// same database.
func lockDir(dir string) (*dirLock, error) {
	return nil, errors.New("locking the data folder needs flock(2), which this operating system lacks")
}

// release does nothing.
func (l *dirLock) release() error { return nil }
