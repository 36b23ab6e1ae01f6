package queuetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

func testConcurrentConsumers(t *testing.T, s *suite) {
	const (
		messages  = 200
		producers = 8
		consumers = 4
	)
	q := s.open(t, queue.Options{})

	// Concurrent producers, so that engines that batch sends are exercised.
	sent := make(chan string, messages)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := p; i < messages; i += producers {
				id, err := q.Send(callContext(t), fmt.Appendf(nil, "message %d", i))
				if err != nil {
					t.Errorf("Send of message %d: %v", i, err)
					return
				}
				sent <- id
			}
		})
	}
	wg.Wait()
	close(sent)
	if t.Failed() {
		t.FailNow()
	}

	var (
		mu       sync.Mutex
		received = map[string]int{}
	)
	deadline := time.Now().Add(time.Minute)
	for range consumers {
		wg.Go(func() {
			consumeUntil(t, q, deadline, messages, &mu, received)
		})
	}
	wg.Wait()

	for id := range sent {
		if n := received[id]; n != 1 {
			t.Errorf("message %s received %d times, want once", id, n)
		}
	}
	if len(received) != messages {
		t.Errorf("consumers received %d distinct messages, want %d", len(received), messages)
	}
	checkCounts(t, q, 0, 0, 0)
}

// consumeUntil receives and deletes messages until the consumers together
// have received total messages or the deadline passes. Every message is hidden
// for longer than the test runs, so a second receive of one is a failure.
func consumeUntil(t *testing.T, q queue.Queue, deadline time.Time, total int,
	mu *sync.Mutex, received map[string]int) {
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(received) >= total
		mu.Unlock()
		if done {
			return
		}

		msgs, err := q.Receive(callContext(t), queue.MaxReceiveBatch, longVisibility)
		if err != nil {
			t.Errorf("Receive: %v", err)
			return
		}
		if len(msgs) == 0 {
			time.Sleep(pollInterval)
			continue
		}

		receipts := make([]string, len(msgs))
		mu.Lock()
		for i, m := range msgs {
			received[m.ID]++
			if received[m.ID] > 1 {
				t.Errorf("message %s received again within its visibility timeout", m.ID)
			}
			receipts[i] = m.Receipt
		}
		mu.Unlock()
		if err := q.Delete(callContext(t), receipts); err != nil {
			t.Errorf("Delete: %v", err)
			return
		}
	}
	t.Errorf("consumers did not receive all %d messages before the deadline", total)
}
