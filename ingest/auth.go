package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// keySet contains the SHA-256 digests of the accepted API keys. Comparing
// fixed-size digests keeps the comparison time independent of the key
// lengths as well as of their contents.
type keySet struct {
	digests [][sha256.Size]byte
}

// newKeySet validates keys and returns their digests. A key that is empty
// or has surrounding white space could never match, because the HTTP server
// trims header values.
func newKeySet(keys []string) (keySet, error) {
	var set keySet
	for i, key := range keys {
		if key == "" {
			return keySet{}, fmt.Errorf("API key %d of %d is empty", i+1, len(keys))
		}
		if strings.TrimSpace(key) != key {
			return keySet{}, fmt.Errorf("API key %d of %d has leading or trailing white space", i+1, len(keys))
		}
		set.digests = append(set.digests, sha256.Sum256([]byte(key)))
	}
	return set, nil
}

// contains reports whether candidate is one of the keys. It compares the
// candidate with every key, without stopping at a match, so the time taken
// does not tell which key matched.
func (s keySet) contains(candidate string) bool {
	digest := sha256.Sum256([]byte(candidate))
	match := 0
	for i := range s.digests {
		match |= subtle.ConstantTimeCompare(digest[:], s.digests[i][:])
	}
	return match == 1
}

// authenticate checks the API key of r. The key may come as
// "Authorization: Bearer KEY", as the password of "Authorization: Basic"
// (any user name), or as "X-API-Key: KEY". When both headers are present, a
// valid key in either one is enough.
func (s keySet) authenticate(r *http.Request) error {
	candidates := make([]string, 0, 2)
	var authErr error
	if value := r.Header.Get("Authorization"); value != "" {
		key, err := keyFromAuthorization(r, value)
		if err != nil {
			authErr = err
		} else {
			candidates = append(candidates, key)
		}
	}
	if key := r.Header.Get("X-API-Key"); key != "" {
		candidates = append(candidates, key)
	}

	if len(candidates) == 0 && authErr == nil {
		return errMissingKey
	}
	valid := false
	for _, candidate := range candidates {
		// Check every candidate so that the time does not tell which
		// header held the valid key.
		if s.contains(candidate) {
			valid = true
		}
	}
	if valid {
		return nil
	}
	if authErr != nil {
		return authErr
	}
	return errInvalidKey
}

// keyFromAuthorization returns the key in an Authorization header value.
// The scheme name is case-insensitive (RFC 9110, section 11.1).
func keyFromAuthorization(r *http.Request, value string) (string, error) {
	scheme, credentials, _ := strings.Cut(value, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		key := strings.TrimSpace(credentials)
		if key == "" {
			return "", fmt.Errorf("%w: Bearer token is empty", errInvalidKey)
		}
		return key, nil
	case strings.EqualFold(scheme, "Basic"):
		_, password, ok := r.BasicAuth()
		if !ok || password == "" {
			return "", fmt.Errorf("%w: Basic credentials must be base64 of user:KEY", errInvalidKey)
		}
		return password, nil
	default:
		return "", fmt.Errorf("%w: unsupported Authorization scheme, use Bearer or Basic", errInvalidKey)
	}
}
