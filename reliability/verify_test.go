package reliability

import (
	"strings"
	"testing"

	"github.com/layover-dev/layover/queue"
)

// endState is what a scenario left behind, to be checked against its
// workload.
type endState struct {
	work     *workload
	dest     *destination
	rejected []queue.Rejection
	stats    queue.Stats
	// duplicated counts events that the forwarder sent again knowing that
	// Iterable had them, when the test could watch the forwarder.
	duplicated int
	// needed, when set, marks the ids whose repeated delivery was needed,
	// such as the events of messages that a killed forward process left in
	// the queue. Repeats of other ids count as duplicated.
	needed func(id string) bool
	// mayRedeliver allows needed redeliveries. Without it every repeated
	// delivery fails the test.
	mayRedeliver bool
	wantDead     int
}

// checkEnd checks that every event of the workload got its expected
// outcome, that no event is lost or duplicated by id and that the queue is
// empty. It returns r with the event columns filled in; the caller sets
// the others, such as the batch counts.
func checkEnd(t *testing.T, s endState, r row) row {
	t.Helper()
	stored := s.dest.storedIDs()
	reasons := map[string][]string{} // event id -> recorded reasons
	for _, rej := range s.rejected {
		reasons[rej.EventID] = append(reasons[rej.EventID], rej.Reason)
	}
	r.Reasons = map[string]int{}
	for _, ev := range s.work.events() {
		r.Events++
		inIterable := stored[ev.ID] > 0
		recorded := reasons[ev.ID]
		switch {
		case inIterable:
			r.Delivered++
		case len(recorded) > 0:
			r.Rejected++
		case ev.Want == wantSkipped:
			r.Skipped++
		default:
			r.Lost++
		}
		checkEvent(t, ev, stored[ev.ID], recorded)
		if ev.Want == wantRejected && len(recorded) > 0 {
			r.Reasons[ev.Reason]++
		}
	}
	include := func(id string) bool { return s.work.byID[id] != nil }
	var duplicated int
	r.Deliveries, r.Redelivered, duplicated = s.dest.deliveryCounts(include, s.needed)
	r.Duplicated = s.duplicated + duplicated
	r.DeadLettered = int(s.stats.DeadLettered)

	if r.Lost > 0 {
		t.Errorf("%d of %d events lost: neither in Iterable, nor rejected, nor skipped", r.Lost, r.Events)
	}
	if r.Duplicated > 0 {
		t.Errorf("%d deliveries repeated an event that Iterable had stored, with no crash or lost response in between", r.Duplicated)
	}
	if r.Redelivered > 0 && !s.mayRedeliver {
		t.Errorf("%d events delivered again, but this fault gives no reason to", r.Redelivered)
	}
	if left := s.stats.Visible + s.stats.InFlight; left != 0 {
		t.Errorf("queue still holds %d messages: %+v", left, s.stats)
	}
	if r.DeadLettered != s.wantDead {
		t.Errorf("%d messages dead-lettered, want %d", r.DeadLettered, s.wantDead)
	}
	return r
}

// checkEvent checks one event's outcome. count is how often Iterable's
// store holds its id, and reasons are its rejection records.
func checkEvent(t *testing.T, ev *eventSpec, count int, reasons []string) {
	t.Helper()
	if count > 1 {
		t.Errorf("event %s stored %d times by id", ev.ID, count)
	}
	if len(reasons) > 1 {
		t.Errorf("event %s rejected %d times: %q", ev.ID, len(reasons), reasons)
	}
	switch ev.Want {
	case wantDelivered:
		if count == 0 {
			t.Errorf("event %s (%s of %s) not delivered; rejections %q", ev.ID, ev.Name, ev.User.UserID, reasons)
		}
		if len(reasons) > 0 {
			t.Errorf("event %s delivered and also rejected: %q", ev.ID, reasons)
		}
	case wantRejected:
		if count > 0 {
			t.Errorf("event %s delivered, want rejected with %q", ev.ID, ev.Reason)
		}
		if len(reasons) == 0 {
			t.Errorf("event %s not rejected, want rejected with %q", ev.ID, ev.Reason)
		} else if !strings.Contains(reasons[0], ev.Reason) {
			t.Errorf("event %s rejected with %q, want a reason containing %q", ev.ID, reasons[0], ev.Reason)
		}
	case wantSkipped:
		if count > 0 || len(reasons) > 0 {
			t.Errorf("event %s should be skipped by the mapping, but it was delivered %d times or rejected %q",
				ev.ID, count, reasons)
		}
	}
}
