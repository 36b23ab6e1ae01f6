package main

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBruteForceBlockedWithoutLoggingKeys tries 25 wrong keys from one
// address in every accepted form. The first 20 get 401, the rest 503 with
// Retry-After, even the right key, and no tried key appears in the log.
func TestBruteForceBlockedWithoutLoggingKeys(t *testing.T) {
	_, simURL := startSimulator(t)
	serve := startServe(t, testEnv(t.TempDir(), simURL))

	var tried []string
	statuses := map[int]int{}
	for i := range 25 {
		key := fmt.Sprintf("guess-%02d-%s", i, strings.Repeat("k", i))
		tried = append(tried, key)
		var header []string
		switch i % 3 {
		case 0:
			header = []string{"Authorization", "Bearer " + key}
		case 1:
			header = []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("mparticle:"+key))}
		case 2:
			header = []string{"X-API-Key", key}
		}
		resp, err := hostileRequest{header: header, body: []byte(`{}`)}.send(serve.base)
		if err != nil {
			t.Fatal(err)
		}
		statuses[resp.status]++
		want := http.StatusUnauthorized
		if i >= 20 {
			want = http.StatusServiceUnavailable
		}
		if resp.status != want {
			t.Errorf("attempt %d: HTTP %d, want %d", i+1, resp.status, want)
		}
		if want == http.StatusServiceUnavailable && resp.header.Get("Retry-After") == "" {
			t.Errorf("attempt %d: 503 without Retry-After", i+1)
		}
	}
	t.Logf("25 wrong keys: statuses %v", statuses)

	resp, err := hostileRequest{header: bearer(), body: []byte(`{}`)}.send(serve.base)
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("right key from the blocked address: HTTP %d, want 503", resp.status)
	}
	checkHealthy(t, serve.base, "brute force")
	serve.stop(t)

	logs := serve.log.String()
	if !strings.Contains(logs, "authentication failed") || !strings.Contains(logs, "client blocked after failed authentications") {
		t.Errorf("log lacks the failures and the block:\n%s", logs)
	}
	for _, key := range append(tried, webhookKey) {
		if strings.Contains(logs, key) {
			t.Errorf("log contains the key %q", key)
		}
	}
}

// TestWrongKeyTimingOverHTTP compares the latency of 401 responses for
// wrong keys that share a prefix with the right key, have other lengths,
// or are random. Method: 150 requests per kind, interleaved in a shuffled
// order, medians compared with a random key of the right key's length.
// HTTP adds noise in the order of 100 µs, so the test only catches gross
// leaks (a difference over 1 ms and 50 %). The in-process test of the
// comparison in package ingest measures to a few nanoseconds.
func TestWrongKeyTimingOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 750 requests")
	}
	_, simURL := startSimulator(t)
	serve := startServe(t, testEnv(t.TempDir(), simURL, "LAYOVER_AUTH_FAILURE_LIMIT=0", "LAYOVER_LOG_LEVEL=error"))

	kinds := []struct{ name, key string }{
		{"random, right length", strings.Repeat("z", len(webhookKey))},
		{"right key but the last byte", webhookKey[:len(webhookKey)-1] + "X"},
		{"right key but the first byte", "X" + webhookKey[1:]},
		{"one byte", "t"},
		{"200 bytes starting with the key", webhookKey + strings.Repeat("x", 200-len(webhookKey))},
	}
	samples := make([][]time.Duration, len(kinds))
	order := make([]int, 0, 150*len(kinds))
	for i := range kinds {
		for range 150 {
			order = append(order, i)
		}
	}
	rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
	for _, i := range order {
		req := hostileRequest{header: []string{"Authorization", "Bearer " + kinds[i].key}, body: []byte(`{}`)}
		start := time.Now()
		resp, err := req.send(serve.base)
		elapsed := time.Since(start)
		if err != nil || resp.status != http.StatusUnauthorized {
			t.Fatalf("%s: HTTP %d, %v; want 401", kinds[i].name, resp.status, err)
		}
		samples[i] = append(samples[i], elapsed)
	}

	median := func(s []time.Duration) time.Duration {
		sorted := slices.Clone(s)
		slices.Sort(sorted)
		return sorted[len(sorted)/2]
	}
	reference := median(samples[0])
	for i, kind := range kinds {
		m := median(samples[i])
		t.Logf("%-32s median %v", kind.name, m)
		diff := max(m-reference, reference-m)
		if diff > time.Millisecond && float64(diff) > 0.5*float64(reference) {
			t.Errorf("%s: median %v, random key %v: the key check leaks time", kind.name, m, reference)
		}
	}
}

// TestKeyFileRotationWithoutRestart rotates keys through LAYOVER_API_KEYS_FILE
// by SIGHUP and by replacing the file, and checks that the same process
// takes the new key, drops the old one, keeps its keys when the file is
// emptied, and never logs a key.
func TestKeyFileRotationWithoutRestart(t *testing.T) {
	_, simURL := startSimulator(t)
	keyFile := filepath.Join(t.TempDir(), "keys")
	writeFile(t, keyFile, "# webhook keys\nkey-one-5f2c\n")
	serve := startServe(t, testEnv(t.TempDir(), simURL, "LAYOVER_API_KEYS=", "LAYOVER_API_KEYS_FILE="+keyFile))
	pid := serve.cmd.Process.Pid

	expectKey(t, serve.base, "key-one-5f2c", http.StatusOK)
	expectKey(t, serve.base, webhookKey, http.StatusUnauthorized)

	writeFile(t, keyFile, "key-one-5f2c\nkey-two-8d1a\n")
	serve.cmd.Process.Signal(syscall.SIGHUP)
	waitKey(t, serve, "key-two-8d1a", 2*time.Second)
	expectKey(t, serve.base, "key-one-5f2c", http.StatusOK)

	// Replace the file by rename, without a signal: the poll finds it.
	next := keyFile + ".new"
	writeFile(t, next, "key-two-8d1a\n")
	if err := os.Rename(next, keyFile); err != nil {
		t.Fatal(err)
	}
	waitKeyRejected(t, serve, "key-one-5f2c", 10*time.Second)
	expectKey(t, serve.base, "key-two-8d1a", http.StatusOK)

	writeFile(t, keyFile, "# emptied by mistake\n")
	serve.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, serve, "api key reload failed", 2*time.Second)
	expectKey(t, serve.base, "key-two-8d1a", http.StatusOK)

	if serve.cmd.Process.Pid != pid {
		t.Fatal("serve restarted")
	}
	checkHealthy(t, serve.base, "rotation")
	serve.stop(t)
	logs := serve.log.String()
	if n := strings.Count(logs, "api keys reloaded"); n < 2 {
		t.Errorf("log has %d reloads, want at least 2 (SIGHUP and the poll):\n%s", n, logs)
	}
	if !strings.Contains(logs, "key_count=2") || !strings.Contains(logs, "key_count=1") {
		t.Errorf("reloads are not logged with the key count:\n%s", logs)
	}
	for _, key := range []string{"key-one", "key-two"} {
		if strings.Contains(logs, key) {
			t.Errorf("log contains a key starting with %q", key)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// expectKey posts an empty batch with key and checks the status.
func expectKey(t *testing.T, base, key string, want int) {
	t.Helper()
	resp, err := hostileRequest{header: []string{"Authorization", "Bearer " + key}, body: []byte(`{}`)}.send(base)
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != want {
		t.Errorf("key %s: HTTP %d, want %d", key, resp.status, want)
	}
}

// waitKey waits until serve accepts key.
func waitKey(t *testing.T, serve *serveProcess, key string, timeout time.Duration) {
	t.Helper()
	waitStatus(t, serve, key, http.StatusOK, timeout)
}

// waitKeyRejected waits until serve rejects key with 401.
func waitKeyRejected(t *testing.T, serve *serveProcess, key string, timeout time.Duration) {
	t.Helper()
	waitStatus(t, serve, key, http.StatusUnauthorized, timeout)
}

func waitStatus(t *testing.T, serve *serveProcess, key string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hostileRequest{header: []string{"Authorization", "Bearer " + key}, body: []byte(`{}`)}.send(serve.base)
		if err == nil && resp.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s: no HTTP %d within %v (last %d, %v)\n%s", key, want, timeout, resp.status, err, serve.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits until the serve log contains text.
func waitLog(t *testing.T, serve *serveProcess, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(serve.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after %v:\n%s", text, timeout, serve.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
