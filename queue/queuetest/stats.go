package queuetest

import (
	"errors"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

func testRetention(t *testing.T, s *suite) {
	const retention = time.Second
	q := s.open(t, queue.Options{Retention: retention})
	send(t, q, []byte("expires"))
	sentAt := time.Now()
	sleepUntil(sentAt.Add(retention + 100*time.Millisecond))

	fresh := send(t, q, []byte("fresh"))
	m := receiveOne(t, q, longVisibility)
	if m.ID != fresh {
		t.Errorf("Receive returned id %s, want only the fresh message %s", m.ID, fresh)
	}
	st := checkCounts(t, q, 0, 1, 0)
	s.checkExpired(t, st, 1)
}

func testDeadRetention(t *testing.T, s *suite) {
	const deadRetention = 2 * time.Second
	q := s.open(t, queue.Options{MaxReceiveCount: 1, DeadRetention: deadRetention})
	sentAt := time.Now()
	id := send(t, q, []byte("dead, then expired"))
	deadLetterAll(t, q, 1)
	if time.Since(sentAt) < deadRetention {
		checkCounts(t, q, 0, 0, 1)
	} else {
		t.Log("dead-lettering took longer than the dead-letter retention; count before expiry not checked")
	}

	sleepUntil(sentAt.Add(deadRetention + 100*time.Millisecond))
	st := checkCounts(t, q, 0, 0, 0)
	s.checkExpired(t, st, 1)

	dl, ok := q.(queue.DeadLetters)
	if !ok {
		return
	}
	list, err := dl.ListDead(callContext(t), "", 10)
	if err != nil {
		t.Fatalf("ListDead: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("ListDead returned %d expired messages, want 0", len(list))
	}
	if _, err := dl.GetDead(callContext(t), id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("GetDead of an expired message: error = %v, want queue.ErrNotFound", err)
	}
}

func testStats(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 1})
	st := checkCounts(t, q, 0, 0, 0)
	s.checkExpired(t, st, 0)
	if st.OldestAge != 0 {
		t.Errorf("Stats.OldestAge of an empty queue = %v, want 0", st.OldestAge)
	}

	send(t, q, []byte("dead"))
	deadLetterAll(t, q, 1)
	beforeSend := time.Now()
	send(t, q, []byte("visible or in flight"))
	send(t, q, []byte("visible or in flight"))
	m := receiveSingle(t, q)
	time.Sleep(20 * time.Millisecond)

	st = checkCounts(t, q, 1, 1, 1)
	s.checkExpired(t, st, 0)
	if s.noOldestAge != "" {
		t.Logf("Stats.OldestAge not checked: %s", s.noOldestAge)
	} else if maxAge := time.Since(beforeSend) + 10*time.Millisecond; st.OldestAge <= 0 || st.OldestAge > maxAge {
		t.Errorf("Stats.OldestAge = %v, want more than 0 and at most %v", st.OldestAge, maxAge)
	}

	deleteMessages(t, q, m)
	checkCounts(t, q, 1, 0, 1)
}

// receiveSingle receives one message with Receive(1) from a queue that has
// more than one visible.
func receiveSingle(t testing.TB, q queue.Queue) queue.Message {
	t.Helper()
	deadline := time.Now().Add(pollWindow)
	for {
		msgs := receive(t, q, 1, longVisibility)
		if len(msgs) == 1 {
			return msgs[0]
		}
		if len(msgs) > 1 {
			t.Fatalf("Receive(1) returned %d messages", len(msgs))
		}
		if time.Now().After(deadline) {
			t.Fatal("Receive(1) returned no message while messages were visible")
		}
		time.Sleep(pollInterval)
	}
}
