package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fuzzLimit is the MaxBodyBytes of FuzzIngestHandler, small so that the
// fuzzer reaches the limit.
const fuzzLimit = 4 << 10

// fuzzMethods are the methods FuzzIngestHandler picks from. POST fills half
// of the slots so that most inputs reach the body checks.
var fuzzMethods = []string{
	http.MethodPost, http.MethodPost, http.MethodPost, http.MethodPost,
	http.MethodGet, http.MethodPut, http.MethodHead, http.MethodOptions,
}

// Authentication forms of FuzzIngestHandler.
const (
	fuzzAuthBearer = iota
	fuzzAuthAPIKey
	fuzzAuthBasic
	fuzzAuthRaw // the fuzzed string is the whole Authorization value
	fuzzAuthForms
)

// FuzzIngestHandler feeds method, header and body variants through the
// handler with a recording queue and checks these invariants:
//   - the handler never panics and returns only the statuses it documents.
//   - a 2xx comes only for a POST with a valid key, with exactly one body
//     stored, equal to the decompressed input and a JSON object within the
//     size limit.
//   - every other status stores nothing and has a JSON error body.
//   - a keyed POST whose decompressed body encoding/json accepts as an
//     object within the limit never gets 400.
func FuzzIngestHandler(f *testing.F) {
	f.Add(uint8(0), "application/json", "", uint8(fuzzAuthBearer), "", false, []byte(testBatch))
	f.Add(uint8(1), "application/json; charset=utf-8", "", uint8(fuzzAuthAPIKey), "", true, []byte(testBatch))
	f.Add(uint8(2), "", "gzip", uint8(fuzzAuthBasic), "", false, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add(uint8(3), "text/html", "br", uint8(fuzzAuthRaw), "Bearer "+testOldKey, false, []byte(`[]`))
	f.Add(uint8(4), "application/json", "identity, gzip", uint8(fuzzAuthRaw), "Basic !!", true, []byte(`{"a":"\xff"}`))

	q := &fakeQueue{}
	opts := testOptions(nil)
	opts.MaxBodyBytes = fuzzLimit
	opts.AuthFailureLimit = -1 // every input comes from one address
	h := newTestHandler(f, q, opts)

	f.Fuzz(func(t *testing.T, method uint8, contentType, encoding string, auth uint8,
		authValue string, compress bool, body []byte) {
		q.mu.Lock()
		q.bodies = nil
		q.mu.Unlock()

		r, keyValid := fuzzRequest(t, method, contentType, encoding, auth, authValue, compress, body)
		rec := serve(h, r)

		stored := q.sent()
		if rec.Code/100 != 2 {
			checkFuzzRejection(t, rec.Code, rec.Body.Bytes(), stored)
			if rec.Code == http.StatusBadRequest && r.Method == http.MethodPost && auth%fuzzAuthForms != fuzzAuthRaw {
				checkNotObject(t, body, compress, r.Header.Values("Content-Encoding"))
			}
			return
		}
		if r.Method != http.MethodPost || !keyValid {
			t.Fatalf("status %d for %s with a valid key = %v", rec.Code, r.Method, keyValid)
		}
		if len(stored) != 1 {
			t.Fatalf("status %d but %d bodies stored, want 1", rec.Code, len(stored))
		}
		want, ok := expectedBody(body, compress, r.Header.Values("Content-Encoding"))
		if !ok {
			t.Fatalf("status %d for a body that does not decompress", rec.Code)
		}
		if !bytes.Equal(stored[0], want) {
			t.Fatalf("stored %q, want the decompressed input %q", stored[0], want)
		}
		checkStoredObject(t, stored[0])
	})
}

// fuzzRequest builds the request of one fuzz input and reports whether it
// carries a valid key.
func fuzzRequest(t *testing.T, method uint8, contentType, encoding string, auth uint8,
	authValue string, compress bool, body []byte) (*http.Request, bool) {
	sent := body
	if compress {
		sent = gzipBytes(t, body)
		encoding = "gzip"
	}
	r := newBatchRequest(sent)
	r.Method = fuzzMethods[int(method)%len(fuzzMethods)]
	setHeader(r, "Content-Type", contentType)
	setHeader(r, "Content-Encoding", encoding)
	keyValid := true
	switch auth % fuzzAuthForms {
	case fuzzAuthBearer:
		r.Header.Set("Authorization", "Bearer "+testKey)
	case fuzzAuthAPIKey:
		r.Header.Set("X-API-Key", testOldKey)
	case fuzzAuthBasic:
		r.Header.Set("Authorization", basicAuth(authValue, testKey))
	case fuzzAuthRaw:
		setHeader(r, "Authorization", authValue)
		// Only a value that contains a configured key can authenticate.
		keyValid = strings.Contains(authValue, testKey) || strings.Contains(authValue, testOldKey) ||
			strings.HasPrefix(strings.ToLower(authValue), "basic ")
	}
	return r, keyValid
}

// setHeader sets a header unless value is empty or could not be sent over
// HTTP/1.1, because the server would never pass such a value on.
func setHeader(r *http.Request, name, value string) {
	if value == "" || strings.ContainsAny(value, "\r\n\x00") {
		return
	}
	r.Header.Set(name, value)
}

// expectedBody returns what the handler must store for an accepted input:
// the body itself, or its gzip decompression when it was sent compressed.
// encodings are the Content-Encoding values the request carries, which
// lack a fuzzed value that setHeader left out.
func expectedBody(body []byte, compress bool, encodings []string) ([]byte, bool) {
	if compress {
		return body, true
	}
	gzipped, err := parseContentEncoding(encodings)
	if err != nil {
		return nil, false
	}
	if !gzipped {
		return body, true
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, fuzzLimit+1))
	return out, err == nil
}

// checkFuzzRejection checks an error response: a documented status, a JSON
// error body, and nothing stored.
func checkFuzzRejection(t *testing.T, status int, body []byte, stored [][]byte) {
	t.Helper()
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("status %d is not one the handler documents for bad input", status)
	}
	if len(stored) != 0 {
		t.Fatalf("status %d but %d bodies stored", status, len(stored))
	}
	var answer errorResponse
	if err := json.Unmarshal(body, &answer); err != nil || answer.Error == "" {
		t.Fatalf("status %d with body %q, want a JSON error", status, body)
	}
}

// checkNotObject fails the test when a body that got 400 is, after
// decompression, one JSON object within the size limit, which the handler
// must store.
func checkNotObject(t *testing.T, body []byte, compress bool, encodings []string) {
	t.Helper()
	want, ok := expectedBody(body, compress, encodings)
	if !ok || len(want) > fuzzLimit || !json.Valid(want) {
		return
	}
	if trimmed := bytes.TrimLeft(want, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		t.Fatalf("status 400 for a valid JSON object: %q", want)
	}
}

// checkStoredObject checks that a stored body is one JSON object within the
// size limit.
func checkStoredObject(t *testing.T, stored []byte) {
	t.Helper()
	if len(stored) > fuzzLimit {
		t.Fatalf("stored %d bytes, over the limit of %d", len(stored), fuzzLimit)
	}
	if !json.Valid(stored) {
		t.Fatalf("stored body is not valid JSON: %q", stored)
	}
	if trimmed := bytes.TrimLeft(stored, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		t.Fatalf("stored body is not a JSON object: %q", stored)
	}
}
