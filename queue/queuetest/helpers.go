package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// Timings shared by the sub-tests.
const (
	// callTimeout bounds every single call to the engine.
	callTimeout = 30 * time.Second
	// longVisibility hides a message for longer than any sub-test runs, so
	// it reappears only through ChangeVisibility or Release.
	longVisibility = 5 * time.Minute
	// pollWindow is how long receiveOne keeps polling for a message that
	// should be visible. Engines that sample servers, like SQS with short
	// polling, can return nothing while messages are waiting.
	pollWindow = 3 * time.Second
	// pollInterval is the pause between two polls.
	pollInterval = 50 * time.Millisecond
)

// callContext returns a context for one call, canceled when the test ends.
func callContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// send stores body and returns the message id.
func send(t testing.TB, q queue.Queue, body []byte) string {
	t.Helper()
	id, err := q.Send(callContext(t), body)
	if err != nil {
		t.Fatalf("Send(%d bytes): %v", len(body), err)
	}
	if id == "" {
		t.Fatal("Send returned an empty message id")
	}
	return id
}

// receive calls Receive once.
func receive(t testing.TB, q queue.Queue, max int, visibility time.Duration) []queue.Message {
	t.Helper()
	msgs, err := q.Receive(callContext(t), max, visibility)
	if err != nil {
		t.Fatalf("Receive(%d, %v): %v", max, visibility, err)
	}
	return msgs
}

// receiveWithin polls Receive until it returns messages or timeout passes.
func receiveWithin(t testing.TB, q queue.Queue, visibility, timeout time.Duration) []queue.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := receive(t, q, queue.MaxReceiveBatch, visibility)
		if len(msgs) > 0 || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(pollInterval)
	}
}

// receiveOne receives the only visible message of the queue.
func receiveOne(t testing.TB, q queue.Queue, visibility time.Duration) queue.Message {
	t.Helper()
	msgs := receiveWithin(t, q, visibility, pollWindow)
	if len(msgs) != 1 {
		t.Fatalf("Receive returned %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

// receiveNone checks that no message is visible.
func receiveNone(t testing.TB, q queue.Queue) {
	t.Helper()
	msgs := receive(t, q, queue.MaxReceiveBatch, longVisibility)
	if len(msgs) != 0 {
		t.Fatalf("Receive returned %d messages (first id %s), want none", len(msgs), msgs[0].ID)
	}
}

// receiveAll receives until it has n messages, each hidden for
// longVisibility, and fails on a duplicate or after pollWindow per message.
func receiveAll(t testing.TB, q queue.Queue, n int) []queue.Message {
	t.Helper()
	var all []queue.Message
	seen := map[string]bool{}
	for len(all) < n {
		msgs := receiveWithin(t, q, longVisibility, pollWindow)
		if len(msgs) == 0 {
			t.Fatalf("received %d of %d messages, then Receive returned none", len(all), n)
		}
		for _, m := range msgs {
			if seen[m.ID] {
				t.Fatalf("message %s received twice while hidden", m.ID)
			}
			seen[m.ID] = true
			all = append(all, m)
		}
	}
	if len(all) != n {
		t.Fatalf("received %d messages, want %d", len(all), n)
	}
	return all
}

// makeVisible ends the visibility timeout of m at once.
func makeVisible(t testing.TB, q queue.Queue, m queue.Message) {
	t.Helper()
	if err := q.ChangeVisibility(callContext(t), m.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(%s, 0): %v", m.ID, err)
	}
}

// deleteMessages deletes msgs by their receipts.
func deleteMessages(t testing.TB, q queue.Queue, msgs ...queue.Message) {
	t.Helper()
	receipts := make([]string, len(msgs))
	for i, m := range msgs {
		receipts[i] = m.Receipt
	}
	if err := q.Delete(callContext(t), receipts); err != nil {
		t.Fatalf("Delete(%d receipts): %v", len(receipts), err)
	}
}

// stats returns the queue's counters.
func stats(t testing.TB, q queue.Queue) queue.Stats {
	t.Helper()
	st, err := q.Stats(callContext(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// checkCounts compares the message counts of Stats with the expected ones.
func checkCounts(t testing.TB, q queue.Queue, visible, inFlight, dead int64) queue.Stats {
	t.Helper()
	st := stats(t, q)
	if st.Visible != visible {
		t.Errorf("Stats.Visible = %d, want %d", st.Visible, visible)
	}
	if st.InFlight != inFlight {
		t.Errorf("Stats.InFlight = %d, want %d", st.InFlight, inFlight)
	}
	if st.DeadLettered != dead {
		t.Errorf("Stats.DeadLettered = %d, want %d", st.DeadLettered, dead)
	}
	return st
}

// checkExpired compares Stats.Expired with want, unless the engine cannot
// count expired messages.
func (s *suite) checkExpired(t testing.TB, st queue.Stats, want int64) {
	t.Helper()
	if s.noExpiredCount != "" {
		t.Logf("Stats.Expired not checked: %s", s.noExpiredCount)
		return
	}
	if st.Expired != want {
		t.Errorf("Stats.Expired = %d, want %d", st.Expired, want)
	}
}

// deadLetterAll moves the n visible messages of a queue opened with
// MaxReceiveCount 1 to the dead-letter queue and returns their ids.
func deadLetterAll(t testing.TB, q queue.Queue, n int) []string {
	t.Helper()
	msgs := receiveAll(t, q, n)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
		makeVisible(t, q, m)
	}

	// The receive after the last allowed one moves the messages; an engine
	// that samples servers may need more than one call to reach them all.
	deadline := time.Now().Add(pollWindow)
	for {
		if msgs := receive(t, q, queue.MaxReceiveBatch, longVisibility); len(msgs) != 0 {
			t.Fatalf("Receive returned message %s after its last allowed receive", msgs[0].ID)
		}
		if stats(t, q).DeadLettered >= int64(n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	return ids
}

// deadLetters returns the engine's dead-letter queue or skips the test.
func deadLetters(t testing.TB, q queue.Queue) queue.DeadLetters {
	t.Helper()
	dl, ok := q.(queue.DeadLetters)
	if !ok {
		t.Skipf("%T does not implement queue.DeadLetters", q)
	}
	return dl
}

// sleepUntil sleeps until the given time, if it is in the future.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
}

// checkStale checks that err is queue.ErrStaleReceipt.
func checkStale(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, queue.ErrStaleReceipt) {
		t.Errorf("%s: error = %v, want queue.ErrStaleReceipt", what, err)
	}
}
