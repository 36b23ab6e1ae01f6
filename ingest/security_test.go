package ingest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(" 52.1.0.0/16, 2600:1f18::/36 ,,192.0.2.7, ::ffff:198.51.100.0/120, 10.1.2.3/8")
	if err != nil {
		t.Fatalf("ParsePrefixes: %v", err)
	}
	want := []string{"52.1.0.0/16", "2600:1f18::/36", "192.0.2.7/32", "198.51.100.0/24", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if empty, err := ParsePrefixes(""); err != nil || len(empty) != 0 {
		t.Errorf("ParsePrefixes(\"\") = %v, %v; want an empty list", empty, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) succeeded, want an error", bad)
		}
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := ParsePrefixes("10.0.0.0/8, 2001:db8:1::/48")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted bool
		want    string
	}{
		{"no proxies configured", "10.0.0.1:4000", []string{"203.0.113.9"}, false, "10.0.0.1"},
		{"untrusted peer ignores header", "198.51.100.4:4000", []string{"203.0.113.9"}, true, "198.51.100.4"},
		{"trusted peer without header", "10.0.0.1:4000", nil, true, "10.0.0.1"},
		{"trusted peer", "10.0.0.1:4000", []string{"203.0.113.9"}, true, "203.0.113.9"},
		{"forged left entry", "10.0.0.1:4000", []string{"192.0.2.66, 203.0.113.9"}, true, "203.0.113.9"},
		{"proxy chain", "10.0.0.1:4000", []string{"203.0.113.9, 10.2.0.1", "10.3.0.1"}, true, "203.0.113.9"},
		{"every hop trusted", "10.0.0.1:4000", []string{"10.9.9.9,10.2.0.1"}, true, "10.9.9.9"},
		{"entry with port", "10.0.0.1:4000", []string{"203.0.113.9:5123"}, true, "203.0.113.9"},
		{"IPv6 entry", "[2001:db8:1::5]:4000", []string{"[2001:db8:2::7]:80"}, true, "2001:db8:2::7"},
		{"mapped IPv4 peer", "[::ffff:198.51.100.4]:4000", nil, false, "198.51.100.4"},
		{"garbage entry", "10.0.0.1:4000", []string{"203.0.113.9, unknown"}, true, "invalid IP"},
		{"garbage peer", "pipe", nil, false, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/event-batch", nil)
			r.RemoteAddr = tt.peer
			for _, line := range tt.xff {
				r.Header.Add("X-Forwarded-For", line)
			}
			var trusted []netip.Prefix
			if tt.trusted {
				trusted = proxies
			}
			if got := clientAddr(r, trusted).String(); got != tt.want {
				t.Errorf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAllowedNetworks(t *testing.T) {
	q := &fakeQueue{}
	opts := testOptions(nil)
	opts.AllowedNetworks = mustPrefixes(t, "10.0.0.0/8")
	h := newTestHandler(t, q, opts)

	outside := newBatchRequest([]byte(testBatch), "X-API-Key", testKey)
	outside.RemoteAddr = "192.0.2.1:5000"
	rec := serve(h, outside)
	if rec.Code != http.StatusForbidden {
		t.Errorf("status from outside = %d, want 403", rec.Code)
	}
	if msg := decodeError(t, rec); !strings.Contains(msg, "192.0.2.1") {
		t.Errorf("error %q does not name the client address", msg)
	}

	noKey := newBatchRequest([]byte(testBatch))
	noKey.RemoteAddr = "192.0.2.1:5000"
	if rec := serve(h, noKey); rec.Code != http.StatusForbidden {
		t.Errorf("status from outside without a key = %d, want 403 before the key check", rec.Code)
	}

	health := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	health.RemoteAddr = "192.0.2.1:5000"
	if rec := serve(h, health); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz from outside = %d, want 200", rec.Code)
	}

	inside := newBatchRequest([]byte(testBatch), "X-API-Key", testKey)
	inside.RemoteAddr = "10.20.30.40:5000"
	if rec := serve(h, inside); rec.Code != http.StatusOK {
		t.Errorf("status from inside = %d, want 200; body %s", rec.Code, rec.Body)
	}
	if n := len(q.sent()); n != 1 {
		t.Errorf("queue got %d Send calls, want 1 (from inside only)", n)
	}
}

func TestAllowedNetworksBehindProxy(t *testing.T) {
	q := &fakeQueue{}
	opts := testOptions(nil)
	opts.AllowedNetworks = mustPrefixes(t, "203.0.113.0/24")
	opts.TrustedProxies = mustPrefixes(t, "10.0.0.0/8")
	h := newTestHandler(t, q, opts)

	tests := []struct {
		xff    string
		status int
	}{
		{"203.0.113.5", http.StatusOK},
		{"203.0.113.5, 10.0.0.2", http.StatusOK},
		{"198.51.100.7", http.StatusForbidden},
		{"203.0.113.5, 198.51.100.7", http.StatusForbidden},
		{"", http.StatusForbidden}, // the proxy itself is not allowed
	}
	for _, tt := range tests {
		r := newBatchRequest([]byte(testBatch), "X-API-Key", testKey)
		r.RemoteAddr = "10.0.0.1:5000"
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if rec := serve(h, r); rec.Code != tt.status {
			t.Errorf("X-Forwarded-For %q: status %d, want %d", tt.xff, rec.Code, tt.status)
		}
	}
	if n := len(q.sent()); n != 2 {
		t.Errorf("queue got %d Send calls, want 2", n)
	}
}

func mustPrefixes(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	prefixes, err := ParsePrefixes(list)
	if err != nil {
		t.Fatal(err)
	}
	return prefixes
}

func TestAuthFailureLimit(t *testing.T) {
	var logs bytes.Buffer
	q := &fakeQueue{}
	opts := testOptions(&logs)
	opts.AuthFailureLimit = 3
	h := newTestHandler(t, q, opts)
	from := func(addr, key string) *httptest.ResponseRecorder {
		r := newBatchRequest([]byte(testBatch), "Authorization", "Bearer "+key)
		r.RemoteAddr = addr
		return serve(h, r)
	}

	for i := range 3 {
		if rec := from("192.0.2.1:1000", "guess-"+string(rune('a'+i))); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, rec.Code)
		}
	}
	rec := from("192.0.2.1:1001", "guess-d")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("fourth attempt: status %d, want 503", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got != "60" && got != "59" {
		t.Errorf("Retry-After = %q, want the rest of the 1-minute window", got)
	}
	decodeError(t, rec)
	if rec := from("192.0.2.1:1002", testKey); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("valid key from a blocked address: status %d, want 503 without a key check", rec.Code)
	}
	if rec := from("192.0.2.2:1000", testKey); rec.Code != http.StatusOK {
		t.Errorf("valid key from another address: status %d, want 200", rec.Code)
	}
	if n := len(q.sent()); n != 1 {
		t.Errorf("queue got %d Send calls, want 1", n)
	}
	if !strings.Contains(logs.String(), `"msg":"client blocked after failed authentications"`) {
		t.Errorf("logs lack the block: %s", logs.String())
	}
	if strings.Contains(logs.String(), "guess-") {
		t.Errorf("logs contain a presented key: %s", logs.String())
	}
}

func TestFailureLimiterWindow(t *testing.T) {
	l := newFailureLimiter(2, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	a := netip.MustParseAddr("2001:db8::1")
	sameSubnet := netip.MustParseAddr("2001:db8::ffff:2")
	otherSubnet := netip.MustParseAddr("2001:db8:0:1::1")

	l.fail(a)
	if _, blocked := l.blocked(a); blocked {
		t.Fatal("blocked after 1 of 2 failures")
	}
	l.fail(sameSubnet)
	wait, blocked := l.blocked(a)
	if !blocked || wait != time.Minute {
		t.Fatalf("after 2 failures in one /64: blocked = %v, wait %v; want true, 1m", blocked, wait)
	}
	if _, blocked := l.blocked(otherSubnet); blocked {
		t.Error("another /64 is blocked")
	}
	now = now.Add(45 * time.Second)
	if wait, _ := l.blocked(a); wait != 15*time.Second {
		t.Errorf("wait 45s into the window = %v, want 15s", wait)
	}
	now = now.Add(15 * time.Second)
	if _, blocked := l.blocked(a); blocked {
		t.Error("still blocked after the window ended")
	}
	l.fail(a)
	if _, blocked := l.blocked(a); blocked {
		t.Error("blocked after 1 failure in a new window")
	}
}

func TestFailureLimiterTableFull(t *testing.T) {
	l := newFailureLimiter(1, time.Minute)
	l.max = 2
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }

	if !l.fail(netip.MustParseAddr("192.0.2.1")) || !l.fail(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("fail returned false below the table size")
	}
	if l.fail(netip.MustParseAddr("192.0.2.3")) {
		t.Error("fail recorded a third client in a table of 2")
	}
	if !l.fail(netip.MustParseAddr("192.0.2.1")) {
		t.Error("fail did not count a tracked client in a full table")
	}
	now = now.Add(time.Minute)
	if !l.fail(netip.MustParseAddr("192.0.2.3")) {
		t.Error("fail did not make room after the windows ended")
	}
}

// gateQueue holds every Send until release is closed.
type gateQueue struct {
	fakeQueue
	entered chan struct{}
	release chan struct{}
}

func (q *gateQueue) Send(ctx context.Context, body []byte) (string, error) {
	q.entered <- struct{}{}
	<-q.release
	return q.fakeQueue.Send(ctx, body)
}

func TestMaxInFlight(t *testing.T) {
	q := &gateQueue{entered: make(chan struct{}, 2), release: make(chan struct{})}
	opts := testOptions(nil)
	opts.MaxInFlight = 2
	h := newTestHandler(t, q, opts)

	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			codes <- serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey)).Code
		})
	}
	<-q.entered
	<-q.entered

	rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("third request: status %d, want 503", rec.Code)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	close(q.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("request in flight: status %d, want 200", code)
		}
	}
	if rec := serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", testKey)); rec.Code != http.StatusOK {
		t.Errorf("after the slots were freed: status %d, want 200", rec.Code)
	}
	if n := len(q.sent()); n != 3 {
		t.Errorf("queue stored %d bodies, want 3", n)
	}
}

func TestKeyRingReplace(t *testing.T) {
	ring, err := NewKeyRing([]string{"first-key"})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(nil)
	opts.APIKeys = nil
	opts.Keys = ring
	h := newTestHandler(t, &fakeQueue{}, opts)
	status := func(key string) int {
		return serve(h, newBatchRequest([]byte(testBatch), "X-API-Key", key)).Code
	}

	if got := status("first-key"); got != http.StatusOK {
		t.Fatalf("first key: status %d, want 200", got)
	}
	if err := ring.Replace([]string{"second-key"}); err != nil {
		t.Fatal(err)
	}
	if got := status("first-key"); got != http.StatusUnauthorized {
		t.Errorf("first key after rotation: status %d, want 401", got)
	}
	if got := status("second-key"); got != http.StatusOK {
		t.Errorf("second key after rotation: status %d, want 200", got)
	}
	if err := ring.Replace(nil); err == nil {
		t.Error("Replace(nil) succeeded, want an error")
	}
	if err := ring.Replace([]string{" padded "}); err == nil {
		t.Error("Replace with a padded key succeeded, want an error")
	}
	if got := status("second-key"); got != http.StatusOK {
		t.Errorf("after failed replacements: status %d, want the second key kept", got)
	}
}

func TestKeysAndAPIKeysExclusive(t *testing.T) {
	ring, err := NewKeyRing([]string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(nil)
	opts.Keys = ring
	if _, err := NewHandler(&fakeQueue{}, opts); err == nil {
		t.Error("NewHandler accepted both Keys and APIKeys")
	}
}

func TestReadKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	content := "# rotated 2025-01-01\n\n  key-one  \nkey-two\r\n#key-old\nkey-one\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "key-one,key-two" {
		t.Errorf("keys = %q, want [key-one key-two]", keys)
	}
	if _, err := ReadKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file read without an error")
	}
}

func TestKeyFileReload(t *testing.T) {
	var logs bytes.Buffer
	logger := testOptions(&logs).Logger
	path := filepath.Join(t.TempDir(), "keys")
	writeKeys := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys("file-key-one\n")
	f, err := OpenKeyFile(path, []string{"env-key"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	accepts := func(key string) bool { return f.Ring().keys().contains(key) }
	if !accepts("file-key-one") || !accepts("env-key") {
		t.Fatal("ring lacks the file key or the fixed key")
	}

	writeKeys("file-key-two\nfile-key-three\n")
	if err := f.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if accepts("file-key-one") || !accepts("file-key-two") || !accepts("env-key") {
		t.Error("reload did not replace the file keys and keep the fixed key")
	}
	if !strings.Contains(logs.String(), `"msg":"api keys reloaded"`) || !strings.Contains(logs.String(), `"key_count":3`) {
		t.Errorf("reload not logged with the key count: %s", logs.String())
	}

	writeKeys("# nothing yet\n")
	if err := f.Reload(context.Background()); err == nil {
		t.Error("reload of a file without keys succeeded, want an error")
	}
	if !accepts("file-key-two") {
		t.Error("a failed reload dropped the current keys")
	}
	if strings.Contains(logs.String(), "file-key") || strings.Contains(logs.String(), "env-key") {
		t.Errorf("logs contain a key: %s", logs.String())
	}
}

func TestKeyFileWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("old-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenKeyFile(path, nil, testOptions(nil).Logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Watch(ctx, 10*time.Millisecond)

	// Replace the file by rename, as editors and secret mounts do.
	next := path + ".new"
	if err := os.WriteFile(next, []byte("new-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !f.Ring().keys().contains("new-key") {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not load the new key within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.Ring().keys().contains("old-key") {
		t.Error("old key still accepted after the reload")
	}
}
