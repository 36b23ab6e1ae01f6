package queuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// sampleBodies returns bodies that an engine might alter: JSON with
// non-ASCII text and an integer above 2^53, every byte value including NUL
// and invalid UTF-8, and 10 KB of random bytes.
func sampleBodies() map[string][]byte {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	random := make([]byte, 10_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"json": []byte(`{"events":[{"data":{"event_name":"Köln ✓ 🚀",` +
			`"custom_attributes":{"n":9007199254740993}}}],"mpid":"-8421651487215645474"}` + "\r\n"),
		"all byte values": allBytes,
		"random bytes":    random,
	}
}

func testSendReceive(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	bodies := sampleBodies()

	before := time.Now()
	names := map[string]string{} // message id to body name
	for name, body := range bodies {
		id := send(t, q, body)
		if _, dup := names[id]; dup {
			t.Fatalf("Send returned id %s twice", id)
		}
		names[id] = name
	}
	after := time.Now()

	for _, m := range receiveAll(t, q, len(bodies)) {
		name, ok := names[m.ID]
		if !ok {
			t.Errorf("Receive returned unknown message id %s", m.ID)
			continue
		}
		if !bytes.Equal(m.Body, bodies[name]) {
			t.Errorf("%s body: got %d bytes %q, want %d bytes %q",
				name, len(m.Body), truncate(m.Body), len(bodies[name]), truncate(bodies[name]))
		}
		if m.Receipt == "" {
			t.Errorf("%s: empty receipt", name)
		}
		if m.ReceiveCount != 1 {
			t.Errorf("%s: ReceiveCount = %d, want 1", name, m.ReceiveCount)
		}
		// Engines may store whole milliseconds or seconds.
		if m.EnqueuedAt.Before(before.Add(-time.Second)) || m.EnqueuedAt.After(after.Add(time.Second)) {
			t.Errorf("%s: EnqueuedAt = %v, want between %v and %v", name, m.EnqueuedAt, before, after)
		}
	}
	receiveNone(t, q)
}

// truncate shortens a body for an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func testReceiveBatch(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	const n = 15
	for i := range n {
		send(t, q, fmt.Appendf(nil, "message %d", i))
	}

	first := receive(t, q, 15, longVisibility)
	if len(first) > queue.MaxReceiveBatch {
		t.Fatalf("Receive(15) returned %d messages, want at most %d", len(first), queue.MaxReceiveBatch)
	}
	if len(first) == 0 {
		t.Fatal("Receive(15) returned no message from a queue of 15")
	}

	seen := map[string]bool{}
	for _, m := range first {
		seen[m.ID] = true
	}
	for _, m := range receiveAll(t, q, n-len(first)) {
		if seen[m.ID] {
			t.Errorf("message %s returned by two receives while hidden", m.ID)
		}
		seen[m.ID] = true
	}
	if len(seen) != n {
		t.Errorf("received %d distinct messages, want %d", len(seen), n)
	}
	checkCounts(t, q, 0, n, 0)
}

func testDeleteBatch(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	for i := range 3 {
		send(t, q, fmt.Appendf(nil, "message %d", i))
	}
	msgs := receiveAll(t, q, 3)

	if err := q.Delete(callContext(t), nil); err != nil {
		t.Errorf("Delete(nil): %v", err)
	}
	receipts := []string{msgs[0].Receipt, msgs[1].Receipt, queue.NewReceipt(), msgs[2].Receipt}
	if err := q.Delete(callContext(t), receipts); err != nil {
		t.Fatalf("Delete with one unknown receipt among three current ones: %v", err)
	}
	checkCounts(t, q, 0, 0, 0)
	receiveNone(t, q)
}

func testSizeLimit(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	limit, advertised := s.maxBodySize, false
	if l, ok := q.(BodySizeLimiter); ok {
		limit, advertised = l.MaxBodySize(), true
	}
	if limit < 1<<20 {
		t.Errorf("body size limit is %d bytes, want at least 1 MiB", limit)
	}

	// Printable ASCII, so that no engine needs to encode the body and the
	// whole limit is available to it.
	body := bytes.Repeat([]byte("0123456789abcdef"), limit/16+1)[:limit]
	send(t, q, body)
	m := receiveOne(t, q, longVisibility)
	if !bytes.Equal(m.Body, body) {
		t.Errorf("body of %d bytes came back as %d bytes or with other content", len(body), len(m.Body))
	}

	if !advertised {
		return
	}
	_, err := q.Send(callContext(t), append(body, 'x'))
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Errorf("Send(%d bytes) error = %v, want queue.ErrTooLarge", limit+1, err)
	}
}

func testCanceledSend(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := q.Send(ctx, []byte("never stored")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a canceled context: error = %v, want context.Canceled", err)
	}
	receiveNone(t, q)
}

func testClosed(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	send(t, q, []byte("stored before close"))
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ctx := callContext(t)
	checkClosed := func(method string, err error) {
		t.Helper()
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("%s after Close: error = %v, want queue.ErrClosed", method, err)
		}
	}
	_, err := q.Send(ctx, []byte("after close"))
	checkClosed("Send", err)
	_, err = q.Receive(ctx, 1, time.Minute)
	checkClosed("Receive", err)
	checkClosed("Delete", q.Delete(ctx, []string{queue.NewReceipt()}))
	checkClosed("ChangeVisibility", q.ChangeVisibility(ctx, queue.NewReceipt(), 0))
	checkClosed("Release", q.Release(ctx, []string{queue.NewReceipt()}))
	_, err = q.Stats(ctx)
	checkClosed("Stats", err)
}
