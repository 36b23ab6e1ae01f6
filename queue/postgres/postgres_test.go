package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

func TestSendConcurrentKeepsIDsAndBodies(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{})
	const n = 60
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := q.Send(ctx, fmt.Appendf(nil, "body-%d", i))
			if err != nil {
				t.Errorf("Send %d: %v", i, err)
			}
			ids[i] = id
		})
	}
	wg.Wait()

	want := map[string]string{}
	for i, id := range ids {
		if _, dup := want[id]; dup {
			t.Fatalf("id %s returned twice", id)
		}
		want[id] = fmt.Sprintf("body-%d", i)
	}
	got := map[string]string{}
	for {
		msgs, err := q.Receive(ctx, queue.MaxReceiveBatch, time.Minute)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			got[m.ID] = string(m.Body)
		}
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	for id, body := range want {
		if got[id] != body {
			t.Errorf("message %s has body %q, want %q", id, got[id], body)
		}
	}
}

func TestSendTooLarge(t *testing.T) {
	q := openTest(t, queue.Options{})
	_, err := q.Send(testContext(t), make([]byte, MaxBodyBytes+1))
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Errorf("Send of %d bytes: error = %v, want ErrTooLarge", MaxBodyBytes+1, err)
	}
}

func TestReceiptFreshPerReceive(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{})
	if _, err := q.Send(ctx, []byte("x")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	first, err := q.Receive(ctx, 1, time.Minute)
	if err != nil || len(first) != 1 {
		t.Fatalf("Receive = %v, %v; want one message", first, err)
	}
	if err := q.Release(ctx, []string{first[0].Receipt}); err != nil {
		t.Fatalf("Release: %v", err)
	}

	second, err := q.Receive(ctx, 1, time.Minute)
	if err != nil || len(second) != 1 {
		t.Fatalf("second Receive = %v, %v; want one message", second, err)
	}
	if second[0].Receipt == first[0].Receipt {
		t.Error("second receive returned the same receipt")
	}
	if second[0].ReceiveCount != 1 {
		t.Errorf("receive count after Release = %d, want 1", second[0].ReceiveCount)
	}

	err = q.ChangeVisibility(ctx, first[0].Receipt, time.Minute)
	if !errors.Is(err, queue.ErrStaleReceipt) {
		t.Errorf("ChangeVisibility with old receipt: error = %v, want ErrStaleReceipt", err)
	}
	if err := q.Delete(ctx, []string{first[0].Receipt}); err != nil {
		t.Fatalf("Delete with old receipt: %v", err)
	}
	stats, err := q.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if stats.InFlight != 1 {
		t.Errorf("in flight after stale Delete = %d, want 1", stats.InFlight)
	}
}

func TestMalformedReceipts(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{})
	receipts := []string{"", "abc", "x.y", queue.NewReceipt(), queue.NewMessageID(),
		queue.NewMessageID() + "." + queue.NewReceipt(), "0190c0de-0000-7000-8000-00000000000g.x"}
	for _, receipt := range receipts {
		if err := q.Delete(ctx, []string{receipt}); err != nil {
			t.Errorf("Delete(%q): %v, want nil", receipt, err)
		}
		if err := q.Release(ctx, []string{receipt}); err != nil {
			t.Errorf("Release(%q): %v, want nil", receipt, err)
		}
		err := q.ChangeVisibility(ctx, receipt, 0)
		if !errors.Is(err, queue.ErrStaleReceipt) {
			t.Errorf("ChangeVisibility(%q): %v, want ErrStaleReceipt", receipt, err)
		}
	}
}

func TestDeadLetterAfterMaxReceives(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{MaxReceiveCount: 2})
	id, err := q.Send(ctx, []byte("poison"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i := range 2 {
		msgs, err := q.Receive(ctx, 1, time.Minute)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("Receive %d = %v, %v; want one message", i+1, msgs, err)
		}
		if err := q.ChangeVisibility(ctx, msgs[0].Receipt, 0); err != nil {
			t.Fatalf("ChangeVisibility: %v", err)
		}
	}
	msgs, err := q.Receive(ctx, 1, time.Minute)
	if err != nil {
		t.Fatalf("third Receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Fatalf("third Receive returned %d messages, want none", len(msgs))
	}
	dead, err := q.GetDead(ctx, id)
	if err != nil {
		t.Fatalf("GetDead: %v", err)
	}
	if dead.ReceiveCount != 2 {
		t.Errorf("dead receive count = %d, want 2", dead.ReceiveCount)
	}
	if !strings.Contains(dead.Reason, "maximum receive count") {
		t.Errorf("dead reason = %q, want it to name the maximum receive count", dead.Reason)
	}
	if _, err := q.GetDead(ctx, "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("GetDead(nope): %v, want ErrNotFound", err)
	}

	moved, err := q.Redrive(ctx, 10)
	if err != nil || moved != 1 {
		t.Fatalf("Redrive = %d, %v; want 1", moved, err)
	}
	msgs, err = q.Receive(ctx, 1, time.Minute)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive after Redrive = %v, %v; want one message", msgs, err)
	}
	if msgs[0].ID != id || msgs[0].ReceiveCount != 1 {
		t.Errorf("redriven message = id %s count %d, want id %s count 1",
			msgs[0].ID, msgs[0].ReceiveCount, id)
	}
}

func TestRetentionCountsExpired(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{Retention: 200 * time.Millisecond})
	if _, err := q.Send(ctx, []byte("old")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	msgs, err := q.Receive(ctx, 1, time.Minute)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 0 {
		t.Errorf("Receive returned %d expired messages, want none", len(msgs))
	}
	stats, err := q.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if stats.Expired != 1 {
		t.Errorf("Expired = %d, want 1", stats.Expired)
	}
}

func TestClosedQueueReturnsErrClosed(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{})
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if _, err := q.Send(ctx, []byte("x")); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if _, err := q.Receive(ctx, 1, time.Minute); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Receive after Close: %v, want ErrClosed", err)
	}
	if _, _, err := q.TryLockForwarder(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("TryLockForwarder after Close: %v, want ErrClosed", err)
	}
}

func TestRejectionsNewestFirst(t *testing.T) {
	ctx := testContext(t)
	q := openTest(t, queue.Options{})
	now := time.Now().UTC().Truncate(time.Microsecond)
	in := []queue.Rejection{
		{MessageID: "1", EventID: "a", EventName: "old", Reason: "r", Event: []byte(`{}`), At: now.Add(-time.Hour)},
		{MessageID: "1", EventID: "b", EventName: "new", Reason: "r", Event: []byte(`{"x":1}`), At: now},
	}
	if err := q.RecordRejected(ctx, in); err != nil {
		t.Fatalf("RecordRejected: %v", err)
	}
	got, err := q.ListRejected(ctx, 10)
	if err != nil {
		t.Fatalf("ListRejected: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("ListRejected returned %d rejections, want 2", len(got))
	}
	if got[0].EventName != "new" || got[1].EventName != "old" {
		t.Errorf("order = %s, %s; want new, old", got[0].EventName, got[1].EventName)
	}
	if !got[0].At.Equal(now) {
		t.Errorf("At = %v, want %v", got[0].At, now)
	}
	if string(got[0].Event) != `{"x":1}` {
		t.Errorf("Event = %s, want {\"x\":1}", got[0].Event)
	}
}

func TestCollectBatchTakesWaitingSends(t *testing.T) {
	q := &Queue{sends: make(chan sendRequest, maxBatchMessages+10)}
	for range maxBatchMessages + 10 {
		q.sends <- sendRequest{body: []byte("x")}
	}
	batch := q.collectBatch(sendRequest{body: []byte("first")})
	if len(batch) != maxBatchMessages {
		t.Errorf("batch has %d sends, want the limit %d", len(batch), maxBatchMessages)
	}
	if string(batch[0].body) != "first" {
		t.Errorf("batch starts with %q, want the first request", batch[0].body)
	}
	if left := len(q.sends); left != 11 {
		t.Errorf("%d sends left waiting, want 11", left)
	}
}

func TestCollectBatchStopsAtByteLimit(t *testing.T) {
	q := &Queue{sends: make(chan sendRequest, 40)}
	big := make([]byte, MaxBodyBytes)
	for range 40 {
		q.sends <- sendRequest{body: big}
	}
	batch := q.collectBatch(sendRequest{body: big})
	if want := maxBatchBytes / MaxBodyBytes; len(batch) != want {
		t.Errorf("batch of %d-byte bodies has %d sends, want %d", MaxBodyBytes, len(batch), want)
	}
}

func BenchmarkSendParallel(b *testing.B) {
	q := openTest(b, queue.Options{})
	body := make([]byte, 2048)
	b.SetBytes(int64(len(body)))
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := q.Send(ctx, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestReadsDeleteNothing checks that Stats and ListDead with a shorter
// retention than the server's, as an operator command might have, count
// old messages as expired without deleting them.
func TestReadsDeleteNothing(t *testing.T) {
	url := newSchemaURL(t)
	server := openAt(t, url, queue.Options{MaxReceiveCount: 1})
	ctx := testContext(t)
	for range 2 {
		if _, err := server.Send(ctx, []byte(`{"events":[]}`)); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	// Dead-letter one of them: its second receive exceeds the maximum.
	if _, err := server.Receive(ctx, 1, time.Millisecond); err != nil {
		t.Fatalf("receive: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := server.Receive(ctx, 10, time.Hour); err != nil {
		t.Fatalf("receive: %v", err)
	}

	operator := openAt(t, url, queue.Options{Retention: time.Microsecond, DeadRetention: time.Microsecond})
	time.Sleep(5 * time.Millisecond)
	st, err := operator.Stats(ctx)
	if err != nil {
		t.Fatalf("operator stats: %v", err)
	}
	if st.Expired != 2 || st.InFlight != 0 || st.DeadLettered != 0 {
		t.Errorf("operator stats %+v, want both messages counted as expired", st)
	}
	if dead, err := operator.ListDead(ctx, "", 10); err != nil || len(dead) != 0 {
		t.Errorf("operator list dead: %d messages, %v; want none past its retention", len(dead), err)
	}

	st, err = server.Stats(ctx)
	if err != nil {
		t.Fatalf("server stats: %v", err)
	}
	if st.InFlight != 1 || st.DeadLettered != 1 || st.Expired != 0 {
		t.Errorf("server stats after the operator's reads %+v, want 1 in flight and 1 dead, none expired", st)
	}
}

func TestOperatorFollowsRecordedRetention(t *testing.T) {
	url := newSchemaURL(t)
	openAt(t, url, queue.Options{Retention: 2 * time.Hour})

	follower := openAt(t, url, queue.Options{Retention: time.Minute, FollowStoredRetention: true})
	if follower.opts.Retention != 2*time.Hour {
		t.Errorf("following queue uses retention %s, want the recorded 2h0m0s", follower.opts.Retention)
	}
	if follower.opts.DeadRetention != queue.DefaultDeadRetention {
		t.Errorf("following queue uses dead retention %s, want the recorded default %s",
			follower.opts.DeadRetention, queue.DefaultDeadRetention)
	}

	openAt(t, url, queue.Options{Retention: time.Minute})
	later := openAt(t, url, queue.Options{Retention: time.Hour, FollowStoredRetention: true})
	if later.opts.Retention != time.Minute {
		t.Errorf("after a server opened with 1m, the following queue uses %s, want 1m0s", later.opts.Retention)
	}
}
