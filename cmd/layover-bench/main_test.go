package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/mparticle"
)

// TestMain runs the child commands when the driver under test starts this
// test binary as one of its children.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestBenchShortRuns runs every benchmark of the driver with tiny counts,
// so that the driver keeps working; the numbers mean nothing.
func TestBenchShortRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds layover and starts servers; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runBench(ctx, []string{"-short"}, &out, io.Discard); err != nil {
		t.Fatalf("runBench -short: %v", err)
	}
	report := out.String()
	for _, want := range []string{
		"Short mode (-short)",
		"| no-op handler (ceiling) |",
		"| baseline: 1 SQLite transaction + sync per request |",
		"| layover serve, SQLite queue |",
		"### Ingest, open loop at half of the maximum",
		"### Forwarder, rate limit off",
		"### Forwarder, rate limit on (10 requests per second)",
		"### Targets",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if os.Getenv("LAYOVER_TEST_POSTGRES_URL") != "" && !strings.Contains(report, "| layover serve, PostgreSQL queue") {
		t.Errorf("LAYOVER_TEST_POSTGRES_URL is set but the report has no PostgreSQL row:\n%s", report)
	}
}

func TestGeneratedBodies(t *testing.T) {
	set := generateBodies(3, 50)
	mapper, err := mapping.New(mapping.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range set.bodies {
		if len(body) < minBodyBytes || len(body) > maxBodyBytes {
			t.Errorf("body %d is %d bytes, want %d to %d", i, len(body), minBodyBytes, maxBodyBytes)
		}
		batch, err := mparticle.Decode(body)
		if err != nil {
			t.Fatalf("body %d does not decode: %v", i, err)
		}
		if n := len(batch.Events); n < 8 || n > 10 {
			t.Errorf("body %d has %d events, want 8 to 10", i, n)
		}
		for _, res := range mapper.Map(batch) {
			if res.Outcome == mapping.Reject {
				t.Errorf("body %d: event %d rejected: %s", i, res.Index, res.Reason)
			}
		}
	}
}

func TestUniqueBodiesHaveNewIDs(t *testing.T) {
	set := generateBodies(5, 2)
	seen := map[string]bool{}
	for i := range 6 {
		batch, err := mparticle.Decode(set.unique(i))
		if err != nil {
			t.Fatalf("copy %d does not decode: %v", i, err)
		}
		for _, e := range batch.Events {
			if seen[e.SourceMessageID] {
				t.Errorf("copy %d repeats source_message_id %s", i, e.SourceMessageID)
			}
			seen[e.SourceMessageID] = true
		}
	}
	if !json.Valid(set.unique(7)) {
		t.Error("renumbered copy is not valid JSON")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	res := loadResult{Window: time.Second}
	for i := 1; i <= 1000; i++ {
		res.Latencies = append(res.Latencies, time.Duration(i)*time.Millisecond)
	}
	res.Requests = len(res.Latencies)
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Millisecond}, {99, 990 * time.Millisecond}, {99.9, 999 * time.Millisecond}, {100, time.Second}} {
		if got := res.percentile(c.p); got != c.want {
			t.Errorf("p%v = %s, want %s", c.p, got, c.want)
		}
	}
	if got := res.throughput(); got != 1000 {
		t.Errorf("throughput %v, want 1000", got)
	}
}

func TestConnectionsFlag(t *testing.T) {
	cfg, err := parseBenchFlags([]string{"-connections", "256, 64,256"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.connections); got != "[256 64]" {
		t.Errorf("connections %s, want [256 64]", got)
	}
	for _, bad := range []string{"0", "64,x", "", "-3"} {
		if _, err := parseBenchFlags([]string{"-connections", bad}, io.Discard); err == nil {
			t.Errorf("-connections %q accepted", bad)
		}
	}
	cfg, err = parseBenchFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.connections); got != "[64 256]" {
		t.Errorf("default connections %s, want [64 256]", got)
	}
}
