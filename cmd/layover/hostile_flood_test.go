package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// floodConnections is how many connections the flood tests open at once.
const floodConnections = 3000

// raiseFileLimit raises this process's open-file limit so that it can hold
// n connections, or skips the test when the hard limit is too low.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if limit.Cur >= n {
		return
	}
	if limit.Max < n {
		t.Skipf("open-file hard limit %d is below the %d this test needs", limit.Max, n)
	}
	limit.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		t.Skipf("cannot raise the open-file limit to %d: %v", n, err)
	}
}

// lowLimits are serve settings with a connection and in-flight limit low
// enough for the flood to pass them.
var lowLimits = []string{"LAYOVER_MAX_CONNECTIONS=256", "LAYOVER_MAX_IN_FLIGHT=32"}

// floodServe starts serve with the given extra settings and quiet logs.
func floodServe(t *testing.T, dir, simURL string, extra ...string) *serveProcess {
	t.Helper()
	return startServe(t, testEnv(dir, simURL, append(extra, "LAYOVER_LOG_LEVEL=warn")...))
}

// peakRSS samples the resident set size of pid every 50 ms until stop is
// closed, then sends the largest value seen.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		ticker := time.NewTicker(50 * time.Millisecond)
		defer ticker.Stop()
		for {
			if n, err := readRSS(pid); err == nil {
				peak = max(peak, n)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-ticker.C:
			}
		}
	}()
	return out
}

// TestFloodOfIdleConnections opens 3,000 connections that send the start
// of a request header and then nothing. The server may accept only its connection
// limit at a time, so its memory stays bounded, and it must serve normally
// once the clients are gone.
func TestFloodOfIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 3,000 connections")
	}
	raiseFileLimit(t, floodConnections+1000)
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	serve := floodServe(t, dir, simURL, lowLimits...)
	addr := strings.TrimPrefix(serve.base, "http://")
	checkHealthy(t, serve.base, "start")
	baseGoroutines := metricValue(t, serve.base, "go_goroutines")
	baseRSS := residentBytes(t, serve.cmd.Process.Pid)

	stopSampling := make(chan struct{})
	peak := peakRSS(serve.cmd.Process.Pid, stopSampling)
	conns := make(chan net.Conn, floodConnections)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range floodConnections / 50 {
				conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				conn.Write([]byte("POST /event-batch HTTP/1.1\r\nHost: flood\r\n"))
				conns <- conn
			}
		})
	}
	wg.Wait()
	close(conns)
	time.Sleep(2 * time.Second) // hold every connection open
	opened := 0
	for conn := range conns {
		conn.Close()
		opened++
	}
	t.Logf("opened %d connections, %d dials failed", opened, failed.Load())
	if opened < floodConnections*9/10 {
		t.Errorf("only %d of %d connections opened; the test did not flood the server", opened, floodConnections)
	}

	checkRecovery(t, serve, baseGoroutines)
	close(stopSampling)
	peakBytes := <-peak
	t.Logf("serve RSS %d MiB before, peak %d MiB", baseRSS>>20, peakBytes>>20)
	if peakBytes-baseRSS > 64<<20 {
		t.Errorf("serve RSS peaked at %d MiB from %d MiB, want at most 64 MiB more", peakBytes>>20, baseRSS>>20)
	}
}

// checkRecovery checks that a normal batch is stored soon after a flood
// and that the server's goroutines return to near their baseline.
func checkRecovery(t *testing.T, serve *serveProcess, baseGoroutines float64) {
	t.Helper()
	start := time.Now()
	if err := postBatch(serve.base, screenViewBatch("after-flood", []string{"after-flood-1"}, 0)); err != nil {
		t.Fatalf("POST after the flood: %v", err)
	}
	t.Logf("a normal POST after the flood took %v", time.Since(start).Round(time.Millisecond))
	checkHealthy(t, serve.base, "the flood")
	goroutines := waitGoroutines(t, serve.base, baseGoroutines+5, 15*time.Second)
	t.Logf("server goroutines %v before, %v after", baseGoroutines, goroutines)
	if goroutines > baseGoroutines+5 {
		t.Errorf("server has %v goroutines after the flood, %v before", goroutines, baseGoroutines)
	}
}

// floodOutcome counts the results of the concurrent POSTs.
type floodOutcome struct {
	mu       sync.Mutex
	statuses map[int]int
	acked    map[string]bool
	errors   []string
}

func (o *floodOutcome) record(status int, id string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.errors = append(o.errors, err.Error())
		return
	}
	o.statuses[status]++
	if id != "" {
		o.acked[id] = true
	}
}

// TestFloodOfConcurrentBatches sends 3,000 valid batches at once, each on
// its own connection, to a server with low limits and to one with the
// default limits. Every response must be 200 or 503 with Retry-After,
// every 200 must be stored, memory must stay bounded and the server must
// serve normally afterwards.
func TestFloodOfConcurrentBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 3,000 concurrent requests")
	}
	raiseFileLimit(t, floodConnections+1000)
	t.Run("low limits", func(t *testing.T) { floodWithBatches(t, lowLimits...) })
	t.Run("default limits", func(t *testing.T) { floodWithBatches(t) })
}

func floodWithBatches(t *testing.T, extra ...string) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	serve := floodServe(t, dir, simURL, extra...)
	checkHealthy(t, serve.base, "start")
	baseGoroutines := metricValue(t, serve.base, "go_goroutines")
	baseRSS := residentBytes(t, serve.cmd.Process.Pid)

	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0},
	}
	stopSampling := make(chan struct{})
	peak := peakRSS(serve.cmd.Process.Pid, stopSampling)
	outcome := &floodOutcome{statuses: map[int]int{}, acked: map[string]bool{}}
	begin := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range floodConnections {
		wg.Go(func() {
			<-begin
			body := screenViewBatch("flood", []string{fmt.Sprintf("flood-%d", i)}, 200)
			status, id, err := postFlood(client, serve.base, body)
			outcome.record(status, id, err)
		})
	}
	close(begin)
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d concurrent POSTs in %v: statuses %v, %d connection errors",
		floodConnections, elapsed.Round(time.Millisecond), outcome.statuses, len(outcome.errors))
	for status := range outcome.statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("got HTTP %d %d times, want only 200 and 503", status, outcome.statuses[status])
		}
	}
	if len(outcome.errors) > 0 {
		t.Errorf("%d requests failed without a response, first: %s", len(outcome.errors), outcome.errors[0])
	}

	checkRecovery(t, serve, baseGoroutines)
	close(stopSampling)
	peakBytes := <-peak
	t.Logf("serve RSS %d MiB before, peak %d MiB", baseRSS>>20, peakBytes>>20)
	if peakBytes-baseRSS > 128<<20 {
		t.Errorf("serve RSS peaked at %d MiB from %d MiB, want at most 128 MiB more", peakBytes>>20, baseRSS>>20)
	}
	serve.stop(t)

	stored := storedBodies(t, dir)
	lost := 0
	for id := range outcome.acked {
		if _, ok := stored[id]; !ok {
			lost++
		}
	}
	t.Logf("%d acknowledged, %d stored (one more from the recovery POST), %d lost", len(outcome.acked), len(stored), lost)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged batches are not in the queue", lost, len(outcome.acked))
	}
	if len(stored) != len(outcome.acked)+1 {
		t.Errorf("queue has %d messages, want %d acknowledged plus 1", len(stored), len(outcome.acked))
	}
}

// postFlood posts one batch and returns the status and, for a 200, the
// message id. A 503 without Retry-After is an error.
func postFlood(client *http.Client, base string, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/event-batch", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+webhookKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		return 0, "", fmt.Errorf("503 without Retry-After")
	}
	var answer struct {
		ID string `json:"id"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.ID == "" {
			return 0, "", fmt.Errorf("200 without a message id: %v", err)
		}
	}
	return resp.StatusCode, answer.ID, nil
}
