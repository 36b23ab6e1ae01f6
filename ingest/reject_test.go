package ingest

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testLimit is the MaxBodyBytes of the tests in this file.
const testLimit = 1 << 10

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatalf("gzip write: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("gzip close: %v", err)
	}
	return buf.Bytes()
}

// incompressible returns n bytes that gzip cannot shrink below n.
func incompressible(n int) []byte {
	out := make([]byte, n)
	state := uint32(2463534242)
	for i := range out {
		state ^= state << 13
		state ^= state >> 17
		state ^= state << 5
		out[i] = byte(state)
	}
	return out
}

// paddedObject returns a JSON object of exactly n bytes.
func paddedObject(n int) []byte {
	const prefix, suffix = `{"pad":"`, `"}`
	return []byte(prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix)
}

func TestEventBatchRejections(t *testing.T) {
	auth := []string{"X-API-Key", testKey}
	gzipHeader := append([]string{"Content-Encoding", "gzip"}, auth...)
	valid := gzipBytes(t, []byte(testBatch))
	bomb := gzipBytes(t, paddedObject(64*testLimit))
	rawTooLarge := gzipBytes(t, incompressible(2*testLimit))

	tests := []struct {
		name   string
		method string
		body   []byte
		header []string
		status int
	}{
		{"get", http.MethodGet, nil, auth, http.StatusMethodNotAllowed},
		{"put", http.MethodPut, []byte(testBatch), auth, http.StatusMethodNotAllowed},
		{"html type", "", []byte(testBatch),
			append([]string{"Content-Type", "text/html; charset=utf-8"}, auth...), 415},
		{"multipart type", "", []byte(testBatch),
			append([]string{"Content-Type", "multipart/form-data; boundary=x"}, auth...), 415},
		{"form type", "", []byte(testBatch),
			append([]string{"Content-Type", "application/x-www-form-urlencoded"}, auth...), 415},
		{"xml type", "", []byte(testBatch),
			append([]string{"Content-Type", "application/atom+xml"}, auth...), 415},
		{"brotli", "", []byte(testBatch),
			append([]string{"Content-Encoding", "br"}, auth...), 415},
		{"gzip twice", "", valid,
			append([]string{"Content-Encoding", "gzip, gzip"}, auth...), 415},
		{"raw over limit", "", paddedObject(testLimit + 1), auth, 413},
		{"gzip raw over limit", "", rawTooLarge, gzipHeader, 413},
		{"gzip decompressed over limit", "", gzipBytes(t, paddedObject(testLimit+1)), gzipHeader, 413},
		{"gzip bomb", "", bomb, gzipHeader, 413},
		{"truncated gzip", "", valid[:len(valid)-6], gzipHeader, 400},
		{"gzip cut in header", "", valid[:5], gzipHeader, 400},
		{"not gzip", "", []byte(testBatch), gzipHeader, 400},
		{"bad gzip checksum", "", corruptChecksum(valid), gzipHeader, 400},
		{"empty gzip body", "", nil, gzipHeader, 400},
		{"json array", "", []byte(`[` + testBatch + `]`), auth, 400},
		{"json string", "", []byte(`"batch"`), auth, 400},
		{"json number", "", []byte(`42`), auth, 400},
		{"json null", "", []byte(` null `), auth, 400},
		{"json true", "", []byte(`true`), auth, 400},
		{"invalid json", "", []byte(`{"events":[}`), auth, 400},
		{"trailing data", "", []byte(testBatch + `{}`), auth, 400},
		{"truncated json", "", []byte(testBatch[:20]), auth, 400},
		{"empty body", "", nil, auth, 400},
		{"white space body", "", []byte(" \r\n\t "), auth, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQueue{}
			opts := testOptions(nil)
			opts.MaxBodyBytes = testLimit
			h := newTestHandler(t, q, opts)
			r := newBatchRequest(tt.body, tt.header...)
			if tt.method != "" {
				r.Method = tt.method
			}

			rec := serve(h, r)

			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			decodeError(t, rec)
			if n := len(q.sent()); n != 0 {
				t.Errorf("queue got %d Send calls, want 0", n)
			}
		})
	}
}

// corruptChecksum flips a bit of the CRC-32 in a gzip trailer.
func corruptChecksum(gz []byte) []byte {
	out := bytes.Clone(gz)
	out[len(out)-8] ^= 1
	return out
}

func TestEventBatchRejectionHeaders(t *testing.T) {
	h := newTestHandler(t, &fakeQueue{}, testOptions(nil))

	rec := serve(h, httptest.NewRequest(http.MethodGet, "/event-batch", nil))
	if got := rec.Header().Get("Allow"); got != http.MethodPost {
		t.Errorf("405 Allow = %q, want POST", got)
	}

	rec = serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey,
		"Content-Encoding", "deflate"))
	if got := rec.Header().Get("Accept-Encoding"); got != "gzip" {
		t.Errorf("415 Accept-Encoding = %q, want gzip", got)
	}
}

func TestEventBatchLimitIsInclusive(t *testing.T) {
	q := &fakeQueue{}
	opts := testOptions(nil)
	opts.MaxBodyBytes = testLimit
	h := newTestHandler(t, q, opts)
	body := paddedObject(testLimit)

	plain := serve(h, newBatchRequest(body, "X-API-Key", testKey))
	gzipped := serve(h, newBatchRequest(gzipBytes(t, body), "X-API-Key", testKey,
		"Content-Encoding", "gzip"))

	if plain.Code != http.StatusOK {
		t.Errorf("plain body of exactly the limit: status = %d, want 200", plain.Code)
	}
	if gzipped.Code != http.StatusOK {
		t.Errorf("gzip body of exactly the limit: status = %d, want 200", gzipped.Code)
	}
}

func TestEventBatchAcceptedContentTypes(t *testing.T) {
	for _, contentType := range []string{
		"", "application/json", "application/json; charset=utf-8",
		"Application/JSON;charset=UTF-8", "application/vnd.mparticle+json",
		"text/plain", "application/octet-stream", "application/json;;",
	} {
		t.Run(contentType, func(t *testing.T) {
			q := &fakeQueue{}
			h := newTestHandler(t, q, testOptions(nil))

			rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey,
				"Content-Type", contentType))

			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			if n := len(q.sent()); n != 1 {
				t.Errorf("queue got %d Send calls, want 1", n)
			}
		})
	}
}

func TestEventBatchGzipStoresDecompressed(t *testing.T) {
	for _, encoding := range []string{"gzip", "x-gzip", "GZIP", "identity, gzip"} {
		t.Run(encoding, func(t *testing.T) {
			q := &fakeQueue{}
			h := newTestHandler(t, q, testOptions(nil))

			rec := serve(h, newBatchRequest(gzipBytes(t, []byte(testBatch)),
				"X-API-Key", testKey, "Content-Encoding", encoding))

			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
			}
			sent := q.sent()
			if len(sent) != 1 {
				t.Fatalf("queue got %d Send calls, want 1", len(sent))
			}
			if string(sent[0]) != testBatch {
				t.Errorf("stored %q, want the decompressed body %q", sent[0], testBatch)
			}
		})
	}
}

func TestEventBatchGzipMultistream(t *testing.T) {
	q := &fakeQueue{}
	h := newTestHandler(t, q, testOptions(nil))
	// RFC 1952 allows several members in one file; they decompress to the
	// concatenation of their data.
	body := append(gzipBytes(t, []byte(`{"a":`)), gzipBytes(t, []byte(`1}`))...)

	rec := serve(h, newBatchRequest(body, "X-API-Key", testKey, "Content-Encoding", "gzip"))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	sent := q.sent()
	if len(sent) != 1 {
		t.Fatalf("queue got %d Send calls, want 1", len(sent))
	}
	if string(sent[0]) != `{"a":1}` {
		t.Errorf("stored %q, want {\"a\":1}", sent[0])
	}
}

func TestEventBatchDefaultLimit(t *testing.T) {
	q := &fakeQueue{}
	h := newTestHandler(t, q, testOptions(nil))

	atLimit := serve(h, newBatchRequest(paddedObject(DefaultMaxBodyBytes), "X-API-Key", testKey))
	overLimit := serve(h, newBatchRequest(paddedObject(DefaultMaxBodyBytes+1), "X-API-Key", testKey))

	if atLimit.Code != http.StatusOK {
		t.Errorf("4 MiB body: status = %d, want 200", atLimit.Code)
	}
	if overLimit.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("4 MiB + 1 byte body: status = %d, want 413", overLimit.Code)
	}
	if n := len(q.sent()); n != 1 {
		t.Errorf("queue got %d Send calls, want 1", n)
	}
}

func TestEventBatchRejectionLogOmitsBody(t *testing.T) {
	var logs bytes.Buffer
	h := newTestHandler(t, &fakeQueue{}, testOptions(&logs))

	serve(h, newBatchRequest([]byte(`["secret-email@example.com"]`), "X-API-Key", testKey))

	logged := logs.String()
	if !strings.Contains(logged, `"msg":"request rejected"`) {
		t.Errorf("logs lack the rejection: %s", logged)
	}
	if !strings.Contains(logged, `"status":400`) {
		t.Errorf("logs lack the status: %s", logged)
	}
	if strings.Contains(logged, "secret-email") {
		t.Errorf("logs contain the body: %s", logged)
	}
}

func TestEventBatchSlowBodyCut(t *testing.T) {
	q := &fakeQueue{}
	srv := httptest.NewUnstartedServer(newTestHandler(t, q, testOptions(nil)))
	srv.Config = NewServer("", srv.Config.Handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	body := &trickleReader{data: []byte(testBatch), delay: 100 * time.Millisecond}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/event-batch", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(testBatch))
	req.Header.Set("X-API-Key", testKey)
	client := &http.Client{Timeout: 5 * time.Second}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Logf("client saw a connection error: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status = %d, want 408 or a connection error", resp.StatusCode)
		}
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("slow sender held the request for %v", elapsed)
	}
	if n := len(q.sent()); n != 0 {
		t.Errorf("queue got %d Send calls, want 0", n)
	}
}

// trickleReader returns one byte per Read after a delay, like a slow
// sender.
type trickleReader struct {
	data  []byte
	delay time.Duration
}

func (r *trickleReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.delay)
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

func TestEventBatchUnknownLengthOverLimit(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		header []string
	}{
		{"plain", paddedObject(testLimit + 1), nil},
		{"gzip raw", gzipBytes(t, incompressible(2*testLimit)), []string{"Content-Encoding", "gzip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &fakeQueue{}
			opts := testOptions(nil)
			opts.MaxBodyBytes = testLimit
			h := newTestHandler(t, q, opts)
			r := newBatchRequest(nil, append([]string{"X-API-Key", testKey}, tt.header...)...)
			// A chunked request has no Content-Length, so only the reader
			// limit can stop it.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(tt.body)))
			r.ContentLength = -1

			rec := serve(h, r)

			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want 413; body %s", rec.Code, rec.Body)
			}
			decodeError(t, rec)
			if n := len(q.sent()); n != 0 {
				t.Errorf("queue got %d Send calls, want 0", n)
			}
		})
	}
}
