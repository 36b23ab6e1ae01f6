package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// hostileRequest is one request of the hostile-input tests. Header pairs
// are added as given, so a test can send odd or repeated headers.
type hostileRequest struct {
	method string // POST when empty
	path   string // /event-batch when empty
	header []string
	body   []byte
}

// hostileResponse is the outcome of a hostileRequest.
type hostileResponse struct {
	status int
	header http.Header
	body   string
}

// noCompressionClient sends bodies and Content-Encoding exactly as given.
var noCompressionClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4},
}

// send sends req to base and returns the response, or an error when the
// connection failed.
func (req hostileRequest) send(base string) (hostileResponse, error) {
	method, path := req.method, req.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/event-batch"
	}
	r, err := http.NewRequest(method, base+path, bytes.NewReader(req.body))
	if err != nil {
		return hostileResponse{}, err
	}
	for i := 0; i+1 < len(req.header); i += 2 {
		r.Header.Add(req.header[i], req.header[i+1])
	}
	resp, err := noCompressionClient.Do(r)
	if err != nil {
		return hostileResponse{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return hostileResponse{}, err
	}
	return hostileResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
}

// bearer returns the header pairs of a request with the test key.
func bearer(extra ...string) []string {
	return append([]string{"Authorization", "Bearer " + webhookKey, "Content-Type", "application/json"}, extra...)
}

// checkHealthy fails the test unless GET /healthz returns 200.
func checkHealthy(t testing.TB, base, after string) {
	t.Helper()
	resp, err := hostileRequest{method: http.MethodGet, path: "/healthz"}.send(base)
	if err != nil {
		t.Fatalf("after %s: GET /healthz: %v", after, err)
	}
	if resp.status != http.StatusOK {
		t.Fatalf("after %s: GET /healthz: HTTP %d %s", after, resp.status, resp.body)
	}
}

// metricValue returns the value of a Prometheus series from GET /metrics,
// such as "go_goroutines" or `layover_ingest_requests_total{code="200"}`.
func metricValue(t testing.TB, base, series string) float64 {
	t.Helper()
	resp, err := hostileRequest{method: http.MethodGet, path: "/metrics"}.send(base)
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("GET /metrics: %v (HTTP %d)", err, resp.status)
	}
	scanner := bufio.NewScanner(strings.NewReader(resp.body))
	for scanner.Scan() {
		name, value, ok := strings.Cut(scanner.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found on /metrics", series)
	return 0
}

// waitGoroutines waits until the server's go_goroutines is at most limit
// and returns the last value seen.
func waitGoroutines(t testing.TB, base string, limit float64, timeout time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := metricValue(t, base, "go_goroutines")
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// residentBytes returns the resident set size of process pid.
func residentBytes(t testing.TB, pid int) int64 {
	t.Helper()
	n, err := readRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readRSS reads the resident set size of process pid from
// /proc/PID/status.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// storedBodies receives every message of the SQLite queue in dir, makes
// them visible again and returns their bodies by message id. The serve
// process must have stopped.
func storedBodies(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	q, err := sqlite.Open(ctx, dir, queue.Options{})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	bodies := map[string][]byte{}
	var receipts []string
	for {
		msgs, err := q.Receive(ctx, queue.MaxReceiveBatch, time.Hour)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			bodies[m.ID] = m.Body
			receipts = append(receipts, m.Receipt)
		}
	}
	if len(receipts) > 0 {
		if err := q.Release(ctx, receipts); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	return bodies
}
