package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable"
)

// layover simulate serves trackBulk until interrupted, then counts the
// requests and events it received.
func TestSimulateServesUntilInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"simulate", "-addr", "127.0.0.1:0", "-api-key", "sim-key"}, outW, &stderr)
		outW.Close()
	}()

	out := bufio.NewReader(outR)
	first, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("first line: %v (stderr: %s)", err, stderr.String())
	}
	baseURL, ok := strings.CutPrefix(strings.TrimSpace(first), "Iterable simulator listening on ")
	if !ok {
		t.Fatalf("first line = %q, want the listening address", first)
	}

	client, err := iterable.NewClient(iterable.ClientOptions{BaseURL: baseURL, APIKey: "sim-key"})
	if err != nil {
		t.Fatal(err)
	}
	event := iterable.Event{Email: "ada@example.com", EventName: "Screen View",
		ID: "test-event-1", CreatedAt: time.Now().Unix()}
	if _, err := client.TrackBulk(ctx, []iterable.Event{event}); err != nil {
		t.Fatalf("TrackBulk: %v", err)
	}

	cancel()
	rest, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != exitOK {
		t.Fatalf("exit status %d, want %d; stderr: %s", c, exitOK, stderr.String())
	}
	for _, want := range []string{"trackBulk requests: 1", "HTTP 200", "stored 1 event,", "Screen View"} {
		if !strings.Contains(string(rest), want) {
			t.Errorf("output after Ctrl-C lacks %q:\n%s", want, rest)
		}
	}
}

// The simulator refuses addresses off the loopback interface, and the
// message names the flag that changes it.
func TestSimulateRejectsPublicAddress(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"simulate", "-addr", "0.0.0.0:0"}, &stdout, &stderr)
	if code != exitUsage {
		t.Fatalf("exit status %d, want %d", code, exitUsage)
	}
	if msg := stderr.String(); !strings.Contains(msg, "-addr") || !strings.Contains(msg, "loopback") {
		t.Errorf("stderr = %q, want it to name -addr and loopback addresses", msg)
	}
}
