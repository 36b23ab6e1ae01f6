package serverless

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ParseKeys splits a key list at commas and newlines and trims white space
// around each key. It returns an error when the list has no key, or when a
// key contains white space, which no Authorization header could carry.
func ParseKeys(list string) ([]string, error) {
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	var keys []string
	for _, f := range fields {
		key := strings.TrimSpace(f)
		if key == "" {
			continue
		}
		if strings.IndexFunc(key, unicode.IsSpace) >= 0 {
			return nil, fmt.Errorf("key %d contains white space; separate keys with commas or newlines", len(keys)+1)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("the key list is empty")
	}
	return keys, nil
}

// KeyID returns the first 12 hexadecimal digits of the SHA-256 digest of
// key. Logs and API Gateway access logs show it instead of the key, so an
// operator can tell which key a request used while rotating keys.
func KeyID(key string) string {
	digest := sha256.Sum256([]byte(key))
	return hex.EncodeToString(digest[:])[:12]
}

// keySet contains the SHA-256 digests of the accepted keys. Comparing
// fixed-size digests keeps the time of a comparison independent of the key
// lengths as well as of their contents.
type keySet struct {
	digests [][sha256.Size]byte
}

func newKeySet(keys []string) keySet {
	s := keySet{digests: make([][sha256.Size]byte, len(keys))}
	for i, key := range keys {
		s.digests[i] = sha256.Sum256([]byte(key))
	}
	return s
}

// contains reports whether candidate is one of the keys. It compares the
// candidate with every key without stopping at a match, so the time taken
// does not tell which key matched.
func (s keySet) contains(candidate string) bool {
	digest := sha256.Sum256([]byte(candidate))
	match := 0
	for i := range s.digests {
		match |= subtle.ConstantTimeCompare(digest[:], s.digests[i][:])
	}
	return match == 1
}

// errBadAuthorization is wrapped by keyFromAuthorization's errors.
var errBadAuthorization = errors.New("invalid Authorization header")

// keyFromAuthorization returns the key in an Authorization header value:
// the token of "Bearer KEY", or the password of "Basic base64(USER:KEY)"
// with any user name. These are the forms that `layover serve` accepts. The
// scheme name is case-insensitive (RFC 9110, section 11.1).
func keyFromAuthorization(value string) (string, error) {
	scheme, credentials, _ := strings.Cut(strings.TrimSpace(value), " ")
	credentials = strings.TrimSpace(credentials)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if credentials == "" {
			return "", fmt.Errorf("%w: the Bearer token is empty", errBadAuthorization)
		}
		return credentials, nil
	case strings.EqualFold(scheme, "Basic"):
		decoded, err := base64.StdEncoding.DecodeString(credentials)
		if err != nil {
			return "", fmt.Errorf("%w: Basic credentials are not base64", errBadAuthorization)
		}
		_, password, ok := strings.Cut(string(decoded), ":")
		if !ok || password == "" {
			return "", fmt.Errorf("%w: Basic credentials must be base64 of USER:KEY", errBadAuthorization)
		}
		return password, nil
	}
	return "", fmt.Errorf("%w: unsupported scheme, use Bearer or Basic", errBadAuthorization)
}
