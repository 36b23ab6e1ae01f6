package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// KeyRing is a set of accepted API keys that can be replaced while the
// handler serves requests, so that keys rotate without a restart. It keeps
// only the SHA-256 digests of the keys. The zero value is not usable: call
// NewKeyRing.
type KeyRing struct {
	set atomic.Pointer[keySet]
}

// NewKeyRing returns a KeyRing that accepts keys. It returns an error when
// keys is empty or when a key is empty or has surrounding white space.
func NewKeyRing(keys []string) (*KeyRing, error) {
	ring := &KeyRing{}
	if err := ring.Replace(keys); err != nil {
		return nil, err
	}
	return ring, nil
}

// Replace makes keys the accepted set, at once for every new request. On an
// error it keeps the previous set, so that a key file caught half-written
// does not lock every client out.
func (k *KeyRing) Replace(keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("replace API keys: the new set is empty, keeping the %d current keys", k.Len())
	}
	set, err := newKeySet(keys)
	if err != nil {
		return fmt.Errorf("replace API keys: %w", err)
	}
	k.set.Store(&set)
	return nil
}

// Len returns the number of accepted keys.
func (k *KeyRing) Len() int {
	set := k.set.Load()
	if set == nil {
		return 0
	}
	return len(set.digests)
}

// keys returns the current set.
func (k *KeyRing) keys() keySet {
	if set := k.set.Load(); set != nil {
		return *set
	}
	return keySet{}
}

// ReadKeyFile reads API keys from path: one key per line, with blank lines
// and lines starting with # skipped and surrounding white space trimmed.
// Duplicate keys are kept once. The error names the file but never a key.
func ReadKeyFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read API key file: %w", err)
	}
	var keys []string
	seen := map[string]bool{}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") || seen[line] {
			continue
		}
		seen[line] = true
		keys = append(keys, line)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read API key file %s: %w", path, err)
	}
	return keys, nil
}

// newOptionalKeyRing returns a ring of keys, or an empty ring, which
// accepts no key, when keys is empty.
func newOptionalKeyRing(keys []string) (*KeyRing, error) {
	if len(keys) == 0 {
		return &KeyRing{}, nil
	}
	return NewKeyRing(keys)
}
