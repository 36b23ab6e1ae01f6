package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable/iterabletest"
)

// hostileCase is one kind of bad (or odd but valid) input and the status
// the server must return for it. store marks inputs that must be stored
// byte for byte, decompressed when gzipped.
type hostileCase struct {
	name   string
	req    hostileRequest
	status int
	store  []byte
}

// gzipped compresses data at the fastest level.
func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gzipBomb returns a gzip stream of about 1 MiB that decompresses to a
// valid JSON object of 1 GiB: "{", spaces, "}".
func gzipBomb(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	zw.Write([]byte("{"))
	for range 1 << 10 {
		if _, err := zw.Write(spaces); err != nil {
			t.Fatal(err)
		}
	}
	zw.Write([]byte("}"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// invalidUTF8Batch is a batch whose screen views carry bytes that are not
// UTF-8 inside JSON strings: a Latin-1 byte, bytes that never occur in
// UTF-8 (FF, FE), a cut multi-byte sequence and an encoded surrogate.
func invalidUTF8Batch() []byte {
	body := screenViewBatch("utf8-user", []string{"utf8-event-1", "utf8-event-2"}, 0)
	body = bytes.Replace(body, []byte("Screen 0"), []byte("Caf\xe9 \xff\xfe"), 1)
	return bytes.Replace(body, []byte("Screen 1"), []byte("Men\xc3 \xed\xa0\x80"), 1)
}

// hugeNumberBatch is a valid batch with numbers beyond every Go numeric
// type, including a number of 100,000 digits.
func hugeNumberBatch() []byte {
	body := screenViewBatch("huge-user", []string{"huge-event-1"}, 0)
	huge := `"mpid":1e999999,"batch_id":-` + strings.Repeat("9", 100_000) + `,"session_id":0.` + strings.Repeat("0", 1000) + `1e-99999,`
	return bytes.Replace(body, []byte(`{"environment"`), []byte(`{`+huge+`"environment"`), 1)
}

// deepBatch is a valid batch with an attribute nested depth levels deep.
func deepBatch(depth int) []byte {
	body := screenViewBatch("deep-user", []string{"deep-event-1"}, 0)
	nested := `"deep":` + strings.Repeat(`[`, depth) + strings.Repeat(`]`, depth) + `,`
	return bytes.Replace(body, []byte(`{"environment"`), []byte(`{`+nested+`"environment"`), 1)
}

func hostileCases(t testing.TB) []hostileCase {
	valid := screenViewBatch("valid-user", []string{"valid-event-1"}, 0)
	validGzip := gzipped(t, valid)
	utf8Batch := invalidUTF8Batch()
	hugeBatch := hugeNumberBatch()
	deep := deepBatch(5000)
	tooDeep := `{"a":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
	gzipHeader := bearer("Content-Encoding", "gzip")
	return []hostileCase{
		{"malformed JSON", hostileRequest{header: bearer(), body: []byte(`{"events":[}`)}, 400, nil},
		{"truncated JSON", hostileRequest{header: bearer(), body: valid[:len(valid)/2]}, 400, nil},
		{"invalid UTF-8 in strings", hostileRequest{header: bearer(), body: utf8Batch}, 200, utf8Batch},
		{"invalid UTF-8 outside strings", hostileRequest{header: bearer(), body: []byte("{\"a\":1\xff}")}, 400, nil},
		{"NUL byte in a string", hostileRequest{header: bearer(), body: []byte("{\"a\":\"\x00\"}")}, 400, nil},
		{"byte order mark", hostileRequest{header: bearer(), body: append([]byte("\xef\xbb\xbf"), valid...)}, 400, nil},
		{"top-level array", hostileRequest{header: bearer(), body: []byte(`[` + string(valid) + `]`)}, 400, nil},
		{"top-level string", hostileRequest{header: bearer(), body: []byte(`"batch"`)}, 400, nil},
		{"top-level number", hostileRequest{header: bearer(), body: []byte(`1e999999`)}, 400, nil},
		{"top-level null", hostileRequest{header: bearer(), body: []byte(`null`)}, 400, nil},
		{"empty body", hostileRequest{header: bearer()}, 400, nil},
		{"nesting 5,000 deep", hostileRequest{header: bearer(), body: deep}, 200, deep},
		{"nesting 100,000 deep", hostileRequest{header: bearer(), body: []byte(tooDeep)}, 400, nil},
		{"huge numbers", hostileRequest{header: bearer(), body: hugeBatch}, 200, hugeBatch},
		{"body over 4 MiB", hostileRequest{header: bearer(), body: bytes.Repeat([]byte(" "), 4<<20+1)}, 413, nil},
		{"gzip bomb, 1 GiB", hostileRequest{header: gzipHeader, body: gzipBomb(t)}, 413, nil},
		{"truncated gzip", hostileRequest{header: gzipHeader, body: validGzip[:len(validGzip)-6]}, 400, nil},
		{"gzip header on plain body", hostileRequest{header: gzipHeader, body: valid}, 400, nil},
		{"valid gzip", hostileRequest{header: gzipHeader, body: validGzip}, 200, valid},
		{"Content-Encoding br", hostileRequest{header: bearer("Content-Encoding", "br"), body: valid}, 415, nil},
		{"Content-Type text/html", hostileRequest{header: []string{"Authorization", "Bearer " + webhookKey, "Content-Type", "text/html"}, body: valid}, 415, nil},
		{"Content-Type multipart", hostileRequest{header: []string{"Authorization", "Bearer " + webhookKey, "Content-Type", "multipart/form-data; boundary=x"}, body: valid}, 415, nil},
		{"Content-Type form", hostileRequest{header: []string{"Authorization", "Bearer " + webhookKey, "Content-Type", "application/x-www-form-urlencoded"}, body: valid}, 415, nil},
		{"Content-Type XML", hostileRequest{header: []string{"Authorization", "Bearer " + webhookKey, "Content-Type", "application/xml"}, body: valid}, 415, nil},
		{"header of 100 KiB", hostileRequest{header: bearer("X-Padding", strings.Repeat("p", 100<<10)), body: valid}, 431, nil},
		{"GET", hostileRequest{method: http.MethodGet, header: bearer()}, 405, nil},
		{"no key", hostileRequest{header: []string{"Content-Type", "application/json"}, body: valid}, 401, nil},
	}
}

// TestHostileInputAtIngest sends every kind of hostile input to a real
// serve process several times and checks the status, that the server stays
// healthy, that only the valid inputs were stored, byte for byte, and that
// the forwarder delivers the odd but valid batches without failing them.
func TestHostileInputAtIngest(t *testing.T) {
	const tries = 3
	sim, simURL := startSimulator(t)
	dir := t.TempDir()
	env := testEnv(dir, simURL)
	serve := startServe(t, env)

	rssBefore := residentBytes(t, serve.cmd.Process.Pid)
	wantStored := map[string][]byte{}
	for _, c := range hostileCases(t) {
		statuses := map[int]int{}
		for try := range tries {
			resp, err := c.req.send(serve.base)
			if err != nil {
				t.Fatalf("%s, try %d: %v", c.name, try+1, err)
			}
			statuses[resp.status]++
			if resp.status != c.status {
				t.Errorf("%s: HTTP %d %s, want %d", c.name, resp.status, resp.body, c.status)
			}
			if resp.status/100 == 2 {
				wantStored[storedID(t, resp.body)] = c.store
			}
			checkHealthy(t, serve.base, c.name)
		}
		t.Logf("| %s | %d | %v |", c.name, tries, statuses)
	}
	rssAfter := residentBytes(t, serve.cmd.Process.Pid)
	t.Logf("serve RSS %d MiB before, %d MiB after", rssBefore>>20, rssAfter>>20)
	if rssAfter-rssBefore > 64<<20 {
		t.Errorf("serve RSS grew from %d MiB to %d MiB, want at most 64 MiB more", rssBefore>>20, rssAfter>>20)
	}
	serve.stop(t)

	stored := storedBodies(t, dir)
	if len(stored) != len(wantStored) {
		t.Errorf("queue has %d messages, want %d (the accepted inputs)", len(stored), len(wantStored))
	}
	for id, want := range wantStored {
		if !bytes.Equal(stored[id], want) {
			t.Errorf("message %s: stored %d bytes that differ from the %d bytes sent", id, len(stored[id]), len(want))
		}
	}

	code, out := runLayover(t, env, "forward")
	if code != 0 {
		t.Fatalf("forward exit %d:\n%s", code, out)
	}
	checkOddBatchesDelivered(t, sim)
	if _, out := runLayover(t, env, "queue", "stats"); !strings.Contains(out, "visible:        0") ||
		!strings.Contains(out, "dead-lettered:  0") {
		t.Errorf("after forward, want every batch delivered and none dead-lettered:\n%s", out)
	}
}

// storedID returns the message id of a 200 response body.
func storedID(t testing.TB, body string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `"id":"`)
	id, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 || id == "" {
		t.Fatalf("200 response without a message id: %s", body)
	}
	return id
}

// checkOddBatchesDelivered checks that the events of the invalid UTF-8,
// huge-number and deep batches reached the simulator. Invalid UTF-8
// arrives as U+FFFD, the replacement encoding/json makes.
func checkOddBatchesDelivered(t *testing.T, sim *iterabletest.Server) {
	t.Helper()
	byID := eventsByID(sim)
	for _, id := range []string{"utf8-event-1", "utf8-event-2", "huge-event-1", "deep-event-1", "valid-event-1"} {
		if _, ok := byID[id]; !ok {
			t.Errorf("event %s not delivered; delivered: %d events", id, len(byID))
		}
	}
	if ev, ok := byID["utf8-event-1"]; ok {
		name := fmt.Sprint(ev.DataFields["screenName"])
		if !strings.HasPrefix(name, "Caf\uFFFD") {
			t.Errorf("screenName of the invalid UTF-8 event = %q, want it to start with Caf\\uFFFD", name)
		}
	}
}

// TestBodyShorterThanContentLength sends fewer bytes than Content-Length
// announces and half-closes the connection: the server must not store the
// part it got and must not respond with 2xx.
func TestBodyShorterThanContentLength(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	env := testEnv(dir, simURL)
	serve := startServe(t, env)

	for try := range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(serve.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		body := `{"events":[],"part":"` + strings.Repeat("x", 100)
		fmt.Fprintf(conn, "POST /event-batch HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n%s", webhookKey, body)
		conn.(*net.TCPConn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, _ := readAll(conn)
		conn.Close()
		if strings.HasPrefix(resp, "HTTP/1.1 2") {
			t.Errorf("try %d: short body got %q", try+1, firstLine(resp))
		}
		t.Logf("try %d: %q", try+1, firstLine(resp))
		checkHealthy(t, serve.base, "a short body")
	}
	serve.stop(t)
	if stored := storedBodies(t, dir); len(stored) != 0 {
		t.Errorf("queue has %d messages, want 0", len(stored))
	}
}

// readAll reads conn until EOF, an error or the deadline, and returns what
// arrived.
func readAll(conn net.Conn) (string, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(conn)
	return buf.String(), err
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
