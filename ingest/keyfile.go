package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultKeyFilePollInterval is how often KeyFile.Watch checks the key file
// for a change.
const DefaultKeyFilePollInterval = 3 * time.Second

// KeyFile keeps a KeyRing in step with an API key file (see ReadKeyFile for
// its format). The ring accepts the file's keys plus a fixed list given at
// start, such as the keys of LAYOVER_API_KEYS.
type KeyFile struct {
	path   string
	fixed  []string
	ring   *KeyRing
	logger *slog.Logger

	mu   sync.Mutex // serializes reloads
	info os.FileInfo
}

// OpenKeyFile reads the key file at path and returns a KeyFile whose ring
// accepts its keys and the fixed ones. It fails when the file cannot be read
// or when the file and fixed together hold no key.
func OpenKeyFile(path string, fixed []string, logger *slog.Logger) (*KeyFile, error) {
	if logger == nil {
		logger = slog.Default()
	}
	f := &KeyFile{path: path, fixed: fixed, logger: logger}
	info, keys, err := f.read()
	if err != nil {
		return nil, err
	}
	ring, err := NewKeyRing(keys)
	if err != nil {
		return nil, fmt.Errorf("API key file %s: %w", path, err)
	}
	f.ring, f.info = ring, info
	return f, nil
}

// Ring returns the key ring that the file keeps up to date.
func (f *KeyFile) Ring() *KeyRing { return f.ring }

// Reload reads the file again and replaces the ring's keys. On an error,
// such as a missing or empty file, the ring keeps its current keys. A
// successful reload is logged with the number of keys, never the keys.
func (f *KeyFile) Reload(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, keys, err := f.read()
	if err != nil {
		return err
	}
	if err := f.ring.Replace(keys); err != nil {
		return fmt.Errorf("API key file %s: %w", f.path, err)
	}
	f.info = info
	f.logger.InfoContext(ctx, "api keys reloaded", "path", f.path, "key_count", len(keys))
	return nil
}

// Watch reloads the file whenever its modification time, size or identity
// changes (an editor or a secret mount that replaces the file by rename),
// checking every interval until ctx ends. Failed reloads are logged as
// errors and retried on the next change.
func (f *KeyFile) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultKeyFilePollInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var failedInfo os.FileInfo // the version that failed, so it is reported once
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		info, err := os.Stat(f.path)
		if err != nil || !f.changed(info) || sameVersion(info, failedInfo) {
			continue
		}
		if err := f.Reload(ctx); err != nil {
			f.logger.ErrorContext(ctx, "api key reload failed, keeping the current keys", "error", err)
			failedInfo = info
			continue
		}
		failedInfo = nil
	}
}

// changed reports whether info describes another version of the file than
// the one last loaded.
func (f *KeyFile) changed(info os.FileInfo) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !sameVersion(info, f.info)
}

// sameVersion reports whether a and b describe the same file with the same
// size and modification time.
func sameVersion(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return false
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// read stats and reads the file and appends the fixed keys to its keys.
func (f *KeyFile) read() (os.FileInfo, []string, error) {
	info, err := os.Stat(f.path)
	if err != nil {
		return nil, nil, fmt.Errorf("read API key file: %w", err)
	}
	keys, err := ReadKeyFile(f.path)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("API key file %s contains no key: write one key per line", f.path)
	}
	return info, append(keys, f.fixed...), nil
}
