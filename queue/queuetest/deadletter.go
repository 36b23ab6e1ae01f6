package queuetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/layover-dev/layover/queue"
)

func testDeadLetter(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 2})
	body := []byte("poison")
	id := send(t, q, body)

	var last queue.Message
	for range 2 {
		last = receiveOne(t, q, longVisibility)
		makeVisible(t, q, last)
	}
	// The third receive would exceed MaxReceiveCount, so it moves the
	// message instead of returning it.
	receiveNone(t, q)
	checkCounts(t, q, 0, 0, 1)
	if err := q.Delete(callContext(t), []string{last.Receipt}); err != nil {
		t.Errorf("Delete with the receipt of a dead-lettered message: %v, want no error", err)
	}
	checkStale(t, "ChangeVisibility on a dead-lettered message",
		q.ChangeVisibility(callContext(t), last.Receipt, 0))

	dl := deadLetters(t, q)
	list, err := dl.ListDead(callContext(t), "", 10)
	if err != nil {
		t.Fatalf("ListDead: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("ListDead returned %d messages, want 1", len(list))
	}
	d := list[0]
	if d.ID != id {
		t.Errorf("dead message id = %s, want %s", d.ID, id)
	}
	if !bytes.Equal(d.Body, body) {
		t.Errorf("dead message body = %q, want %q", d.Body, body)
	}
	if d.ReceiveCount != 2 {
		t.Errorf("dead message ReceiveCount = %d, want 2", d.ReceiveCount)
	}
	if d.Reason == "" {
		t.Error("dead message has no reason")
	}
	if d.DeadAt.Before(d.EnqueuedAt) {
		t.Errorf("dead message DeadAt %v is before EnqueuedAt %v", d.DeadAt, d.EnqueuedAt)
	}

	got, err := dl.GetDead(callContext(t), id)
	if err != nil {
		t.Fatalf("GetDead(%s): %v", id, err)
	}
	if got.ID != d.ID || !bytes.Equal(got.Body, d.Body) || got.Reason != d.Reason ||
		got.ReceiveCount != d.ReceiveCount || !got.DeadAt.Equal(d.DeadAt) {
		t.Errorf("GetDead = %+v, want the message ListDead returned, %+v", got, d)
	}
	if _, err := dl.GetDead(callContext(t), queue.NewMessageID()); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("GetDead of an unknown id: error = %v, want queue.ErrNotFound", err)
	}
}

func testRedrive(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 1})
	dl := deadLetters(t, q)
	bodies := []string{"first", "second"}
	for _, b := range bodies {
		send(t, q, []byte(b))
	}
	deadLetterAll(t, q, len(bodies))
	checkCounts(t, q, 0, 0, 2)

	for i, want := range []int{1, 1, 0} {
		limit := 1
		if i == 2 {
			limit = 10
		}
		n, err := dl.Redrive(callContext(t), limit)
		if err != nil {
			t.Fatalf("Redrive(%d): %v", limit, err)
		}
		if n != want {
			t.Errorf("Redrive call %d moved %d messages, want %d", i+1, n, want)
		}
	}
	checkCounts(t, q, 2, 0, 0)

	var got []string
	for _, m := range receiveAll(t, q, len(bodies)) {
		got = append(got, string(m.Body))
		if m.ReceiveCount != 1 {
			t.Errorf("redriven message %q: ReceiveCount = %d, want 1", m.Body, m.ReceiveCount)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, bodies) {
		t.Errorf("redriven bodies = %q, want %q", got, bodies)
	}
}

func testPurgeDead(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 1})
	dl := deadLetters(t, q)
	for i := range 3 {
		send(t, q, fmt.Appendf(nil, "dead %d", i))
	}
	deadLetterAll(t, q, 3)
	alive := send(t, q, []byte("alive"))

	n, err := dl.PurgeDead(callContext(t))
	if err != nil {
		t.Fatalf("PurgeDead: %v", err)
	}
	if n != 3 {
		t.Errorf("PurgeDead deleted %d messages, want 3", n)
	}
	list, err := dl.ListDead(callContext(t), "", 10)
	if err != nil {
		t.Fatalf("ListDead: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("ListDead after PurgeDead returned %d messages, want 0", len(list))
	}
	if n, err := dl.PurgeDead(callContext(t)); err != nil || n != 0 {
		t.Errorf("second PurgeDead = %d, %v; want 0, nil", n, err)
	}
	checkCounts(t, q, 1, 0, 0)
	if m := receiveOne(t, q, longVisibility); m.ID != alive {
		t.Errorf("message left after PurgeDead has id %s, want %s", m.ID, alive)
	}
}

func testListDeadPaging(t *testing.T, s *suite) {
	q := s.open(t, queue.Options{MaxReceiveCount: 1})
	dl := deadLetters(t, q)
	want := []string{"oldest", "middle", "newest"}
	for _, b := range want {
		send(t, q, []byte(b))
	}
	deadLetterAll(t, q, len(want))

	firstPage, err := dl.ListDead(callContext(t), "", 2)
	if err != nil {
		t.Fatalf("ListDead first page: %v", err)
	}
	if len(firstPage) != 2 {
		t.Fatalf("first page has %d messages, want 2", len(firstPage))
	}
	secondPage, err := dl.ListDead(callContext(t), firstPage[1].ID, 2)
	if err != nil {
		t.Fatalf("ListDead second page: %v", err)
	}
	if len(secondPage) != 1 {
		t.Fatalf("second page has %d messages, want 1", len(secondPage))
	}

	var got []string
	for _, d := range append(firstPage, secondPage...) {
		got = append(got, string(d.Body))
	}
	if !slices.Equal(got, want) {
		t.Errorf("dead messages in listing order = %q, want oldest first %q", got, want)
	}
}
