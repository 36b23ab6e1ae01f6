package queuetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

func testVisibilityTimeout(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	send(t, q, []byte("hidden for two seconds"))

	const visibility = 2 * time.Second
	start := time.Now()
	first := receiveOne(t, q, visibility)
	hidden := receive(t, q, queue.MaxReceiveBatch, visibility)
	if time.Since(start) < visibility && len(hidden) != 0 {
		t.Fatalf("message %s returned again during its visibility timeout", hidden[0].ID)
	}

	again := receiveWithin(t, q, longVisibility, visibility+pollWindow)
	elapsed := time.Since(start)
	if len(again) != 1 {
		t.Fatalf("%v after a receive with a %v visibility timeout, Receive returned %d messages, want 1",
			elapsed.Round(time.Millisecond), visibility, len(again))
	}
	if early := visibility - elapsed; early > s.earlyVisibility {
		t.Errorf("message returned again after %v, before its %v visibility timeout ended", elapsed, visibility)
	} else if early > 0 {
		t.Logf("message returned again %v before its visibility timeout ended, within the allowed %v: %s",
			early, s.earlyVisibility, s.earlyVisibilityReason)
	}
	m := again[0]
	if m.ID != first.ID {
		t.Errorf("second receive returned id %s, want %s", m.ID, first.ID)
	}
	if m.Receipt == first.Receipt {
		t.Error("second receive returned the receipt of the first")
	}
	if m.ReceiveCount != 2 {
		t.Errorf("ReceiveCount = %d, want 2", m.ReceiveCount)
	}
}

func testStaleReceipt(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	send(t, q, []byte("received three times"))
	first := receiveOne(t, q, longVisibility)
	makeVisible(t, q, first)
	second := receiveOne(t, q, longVisibility)
	if second.Receipt == first.Receipt {
		t.Fatal("second receive returned the receipt of the first")
	}

	if err := q.Delete(callContext(t), []string{first.Receipt}); err != nil {
		t.Errorf("Delete with a stale receipt: %v, want no error", err)
	}
	checkStale(t, "ChangeVisibility with a stale receipt",
		q.ChangeVisibility(callContext(t), first.Receipt, 0))
	if err := q.Release(callContext(t), []string{first.Receipt}); err != nil {
		t.Errorf("Release with a stale receipt: %v, want no error", err)
	}
	receiveNone(t, q)

	makeVisible(t, q, second)
	third := receiveOne(t, q, longVisibility)
	if third.ID != second.ID {
		t.Fatalf("third receive returned id %s, want %s", third.ID, second.ID)
	}
	if third.ReceiveCount != 3 {
		t.Errorf("ReceiveCount = %d, want 3 (a stale Release must not take back a receive)", third.ReceiveCount)
	}
	deleteMessages(t, q, third)
	checkCounts(t, q, 0, 0, 0)
	receiveNone(t, q)
}

func testChangeVisibility(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	send(t, q, []byte("extended"))

	start := time.Now()
	m := receiveOne(t, q, time.Second)
	const extended = 10 * time.Second
	if err := q.ChangeVisibility(callContext(t), m.Receipt, extended); err != nil {
		t.Fatalf("ChangeVisibility(%v): %v", extended, err)
	}
	sleepUntil(start.Add(1500 * time.Millisecond))
	receiveNone(t, q)

	if err := q.ChangeVisibility(callContext(t), m.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	again := receiveOne(t, q, longVisibility)
	if again.ID != m.ID {
		t.Fatalf("receive after ChangeVisibility(0) returned id %s, want %s", again.ID, m.ID)
	}
	if again.ReceiveCount != 2 {
		t.Errorf("ReceiveCount = %d, want 2", again.ReceiveCount)
	}

	checkStale(t, "ChangeVisibility with an unknown receipt",
		q.ChangeVisibility(callContext(t), queue.NewReceipt(), time.Minute))
	checkStale(t, "ChangeVisibility with the previous receipt",
		q.ChangeVisibility(callContext(t), m.Receipt, time.Minute))
	makeVisible(t, q, again)
	checkStale(t, "ChangeVisibility on a message no longer in flight",
		q.ChangeVisibility(callContext(t), again.Receipt, time.Minute))
}

func testReceiveCount(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 5})
	id := send(t, q, []byte("counted"))
	for want := 1; want <= 5; want++ {
		m := receiveOne(t, q, longVisibility)
		if m.ID != id {
			t.Fatalf("receive %d returned id %s, want %s", want, m.ID, id)
		}
		if m.ReceiveCount != want {
			t.Errorf("receive %d: ReceiveCount = %d, want %d", want, m.ReceiveCount, want)
		}
		makeVisible(t, q, m)
	}
}

func testRelease(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{})
	body := []byte("released")
	send(t, q, body)
	first := receiveOne(t, q, longVisibility)
	makeVisible(t, q, first)
	second := receiveOne(t, q, longVisibility)

	if err := q.Release(callContext(t), []string{second.Receipt, queue.NewReceipt()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	// The receive that the first Release took back cannot be taken back again.
	if err := q.Release(callContext(t), []string{second.Receipt}); err != nil {
		t.Errorf("second Release with the same receipt: %v, want no error", err)
	}
	third := receiveOne(t, q, longVisibility)
	if !bytes.Equal(third.Body, body) {
		t.Errorf("released message came back with body %q, want %q", third.Body, body)
	}
	want := second.ReceiveCount
	if s.releaseResetsCount {
		want = 1
	}
	if third.ReceiveCount != want {
		t.Errorf("ReceiveCount after Release = %d, want %d", third.ReceiveCount, want)
	}

	receiveNone(t, q)
}

func testReceiveZeroVisibility(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 1})
	send(t, q, []byte("dead on the next receive"))
	makeVisible(t, q, receiveOne(t, q, longVisibility))
	id := send(t, q, []byte("never hidden"))

	// This receive moves the first message to the dead-letter queue and
	// returns the second, which stays visible. It must return the second
	// message once, not once per pass over the visible messages.
	msgs := receive(t, q, queue.MaxReceiveBatch, 0)
	if len(msgs) != 1 || msgs[0].ID != id {
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		t.Fatalf("Receive with visibility 0 returned ids %v, want only %s", ids, id)
	}
	if got := stats(t, q).DeadLettered; got != 1 {
		t.Errorf("Stats.DeadLettered = %d, want 1", got)
	}
}

func testReleaseAvoidsDeadLetter(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 1})
	body := []byte("destination down")
	send(t, q, body)
	for i := range 3 {
		m := receiveOne(t, q, longVisibility)
		if m.ReceiveCount != 1 {
			t.Errorf("receive %d: ReceiveCount = %d, want 1", i+1, m.ReceiveCount)
		}
		if err := q.Release(callContext(t), []string{m.Receipt}); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	checkCounts(t, q, 1, 0, 0)
}
