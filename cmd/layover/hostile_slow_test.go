package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowResult is what one slow sender saw.
type slowResult struct {
	held     time.Duration // from the first byte sent until the server closed
	response string        // status line, or "" when the server sent none
	err      error
}

// trickle opens a connection to addr, writes prefix at once, then one byte
// of rest every interval until the server closes the connection or the
// bytes run out, and reports how long the server kept the connection.
func trickle(addr, prefix, rest string, interval, limit time.Duration) slowResult {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return slowResult{err: err}
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte(prefix)); err != nil {
		return slowResult{err: err}
	}
	go func() {
		for i := range len(rest) {
			time.Sleep(interval)
			if _, err := conn.Write([]byte{rest[i]}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(start.Add(limit))
	answer, _ := readAll(conn)
	held := time.Since(start)
	if held >= limit {
		return slowResult{held: held, err: fmt.Errorf("connection still open after %v", limit)}
	}
	return slowResult{held: held, response: firstLine(answer)}
}

// TestSlowSendersCutOff trickles bodies and headers slower than the
// server's timeouts from many connections at once. Each connection must be
// closed within its timeout, none may get a 2xx, nothing may be stored, and
// goroutines and memory of the server must return to their baseline.
func TestSlowSendersCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5s header timeout")
	}
	const (
		readTimeout   = 2 * time.Second
		headerTimeout = 5 * time.Second // ingest.ServerReadHeaderTimeout
		slack         = 2 * time.Second
		bodySenders   = 40
		headerSenders = 20
	)
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	serve := startServe(t, testEnv(dir, simURL, "LAYOVER_READ_TIMEOUT="+readTimeout.String()))
	addr := strings.TrimPrefix(serve.base, "http://")
	checkHealthy(t, serve.base, "start")
	baseGoroutines := metricValue(t, serve.base, "go_goroutines")
	baseRSS := residentBytes(t, serve.cmd.Process.Pid)

	bodyPrefix := fmt.Sprintf("POST /event-batch HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n", webhookKey)
	body := `{"events":[],"pad":"` + strings.Repeat("x", 170) + `"}`
	headerPrefix := "POST /event-batch HTTP/1.1\r\n"
	headers := "Host: test\r\nX-Slow: " + strings.Repeat("s", 200) + "\r\n\r\n"

	var wg sync.WaitGroup
	bodyResults := make([]slowResult, bodySenders)
	headerResults := make([]slowResult, headerSenders)
	for i := range bodySenders {
		wg.Go(func() {
			bodyResults[i] = trickle(addr, bodyPrefix, body, 100*time.Millisecond, readTimeout+slack)
		})
	}
	for i := range headerSenders {
		wg.Go(func() {
			headerResults[i] = trickle(addr, headerPrefix, headers, 100*time.Millisecond, headerTimeout+slack)
		})
	}
	wg.Wait()

	checkSlowResults(t, "slow body", bodyResults, readTimeout+slack)
	checkSlowResults(t, "slow headers", headerResults, headerTimeout+slack)
	checkHealthy(t, serve.base, "slow senders")
	goroutines := waitGoroutines(t, serve.base, baseGoroutines+3, 10*time.Second)
	rss := residentBytes(t, serve.cmd.Process.Pid)
	t.Logf("server goroutines %v before, %v after; RSS %d MiB before, %d MiB after",
		baseGoroutines, goroutines, baseRSS>>20, rss>>20)
	if goroutines > baseGoroutines+3 {
		t.Errorf("server has %v goroutines after the slow senders, %v before", goroutines, baseGoroutines)
	}
	if rss-baseRSS > 32<<20 {
		t.Errorf("server RSS grew from %d MiB to %d MiB, want at most 32 MiB more", baseRSS>>20, rss>>20)
	}
	serve.stop(t)
	if stored := storedBodies(t, dir); len(stored) != 0 {
		t.Errorf("queue has %d messages from slow senders, want 0", len(stored))
	}
}

// checkSlowResults checks that every slow sender was cut off within limit
// and none got a 2xx.
func checkSlowResults(t *testing.T, kind string, results []slowResult, limit time.Duration) {
	t.Helper()
	var longest time.Duration
	responses := map[string]int{}
	for i, r := range results {
		if r.err != nil {
			t.Errorf("%s %d: %v", kind, i, r.err)
			continue
		}
		longest = max(longest, r.held)
		responses[r.response]++
		if strings.HasPrefix(r.response, "HTTP/1.1 2") {
			t.Errorf("%s %d: got %q", kind, i, r.response)
		}
	}
	t.Logf("%s: %d senders, longest held %v (limit %v), responses %v", kind, len(results),
		longest.Round(time.Millisecond), limit, responses)
}
