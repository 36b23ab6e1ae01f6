package reliability

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/mparticle"
)

// forwardEnv are the settings of a forward run that tests kill: small
// requests, so a run sends many, and a short visibility timeout, so the
// next run does not wait long for the killed run's messages.
var forwardEnv = []string{
	"LAYOVER_BATCH_EVENTS=50",
	"LAYOVER_VISIBILITY_TIMEOUT=1s",
	"LAYOVER_RETRY_BUDGET=500ms",
}

// killPoint is where a forward run is killed: after Iterable stored the
// events of trackBulk request n of the run, either before the 200 leaves
// Iterable or right after it was sent.
type killPoint struct {
	request       int
	afterResponse bool
}

// TestForwardKilledAfterTrackBulk SIGKILLs layover forward between a
// trackBulk that Iterable stored and the delete of the messages, three
// times, then runs forward to the end. The redelivered events must
// update the same ids in Iterable.
func TestForwardKilledAfterTrackBulk(t *testing.T) {
	dest := newDestination(t, iterabletest.Options{RateLimit: -1})
	dir := t.TempDir()
	env := layoverEnv(dir, dest.URL, forwardEnv...)
	work := baseWorkload()
	serve := startServe(t, env)
	msgOf := postAll(t, serve.base, work)
	serve.stop(t)

	points := []killPoint{{request: 2}, {request: 3, afterResponse: true}, {request: 1}}
	leftAfterKill := map[string]bool{} // messages in the queue after some kill
	for _, point := range points {
		killForwardAt(t, dest, env, point)
		for id := range storedMessages(t, dir) {
			leftAfterKill[id] = true
		}
		time.Sleep(1100 * time.Millisecond) // the killed run's visibility timeout
	}
	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("forward after the kills exited with %d\n%s", code, out)
	}

	st, rejected := queueEnd(t, dir)
	res := checkEnd(t, endState{work: work, dest: dest, rejected: rejected, stats: st, mayRedeliver: true,
		needed: func(id string) bool { return leftAfterKill[msgOf[id]] }}, row{
		Group: "process", Scenario: "SIGKILL of forward after a stored trackBulk, before the delete",
		Trials: len(points), Acked: len(work.Batches),
		Note: fmt.Sprintf("%d forward runs killed, then one run to the end", len(points)),
	})
	if res.Redelivered == 0 {
		t.Errorf("no event was delivered twice; the kills did not hit between trackBulk and delete")
	}
	record(t, res)
}

// killForwardAt runs layover forward and SIGKILLs it at point.
func killForwardAt(t *testing.T, dest *destination, env []string, point killPoint) {
	t.Helper()
	var target atomic.Pointer[process]
	first := dest.requestCount()
	dest.setAfterStore(func(n int, stored []string) (responseAction, func()) {
		p := target.Load()
		if n-first != point.request || p == nil || len(stored) == 0 {
			return sendResponse, nil
		}
		if point.afterResponse {
			return sendResponse, p.kill
		}
		p.kill()
		return dropResponse, nil
	})
	defer dest.setAfterStore(nil)

	fwd := startLayover(t, env, nil, "forward")
	target.Store(fwd)
	if code := fwd.wait(t, 30*time.Second); code != -1 {
		t.Fatalf("forward exited with %d before the kill at request %d\n%s", code, point.request, fwd.out.String())
	}
}

// TestServeKilledDuringIngest SIGKILLs layover serve while four clients
// POST batches, five times, then forwards everything stored. Every batch
// that got a 2xx must be delivered.
func TestServeKilledDuringIngest(t *testing.T) {
	dest := newDestination(t, iterabletest.Options{RateLimit: -1})
	dir := t.TempDir()
	env := layoverEnv(dir, dest.URL)
	const rounds, clients = 5, 4

	var attempts []*ingestAttempt
	for round := range rounds {
		serve := startServe(t, env)
		var mu sync.Mutex
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for client := range clients {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					a := postAttempt(ctx, serve.base, fmt.Sprintf("k%d-%d-%03d", round, client, n))
					mu.Lock()
					attempts = append(attempts, a)
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(150+50*round) * time.Millisecond)
		serve.kill()
		cancel()
		wg.Wait()
	}

	stored := storedMessages(t, dir)
	work, acked, lost := ingestOutcome(attempts, stored)
	if acked == 0 {
		t.Fatal("no POST was acknowledged; the test proves nothing")
	}
	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("forward exited with %d\n%s", code, out)
	}
	st, rejected := queueEnd(t, dir)
	res := checkEnd(t, endState{work: work, dest: dest, rejected: rejected, stats: st}, row{
		Group: "process", Scenario: "SIGKILL of serve while 4 clients POST",
		Trials: rounds, Acked: acked, BatchesLost: lost,
		Note: fmt.Sprintf("%d POSTs, %d stored without a 2xx reaching the client (the sender retries those)",
			len(attempts), len(work.Batches)-acked),
	})
	if lost > 0 {
		t.Errorf("%d of %d acknowledged batches are missing from the queue", lost, acked)
	}
	record(t, res)
}

// ingestAttempt is one POST of a batch while serve may be killed.
type ingestAttempt struct {
	batch *batchSpec
	id    string // the message id, when the POST got a 2xx
}

// postAttempt posts one base-workload batch with event ids "<prefix>-<n>".
func postAttempt(ctx context.Context, base, prefix string) *ingestAttempt {
	w := &workload{byID: map[string]*eventSpec{}}
	b := w.add(prefix, baseUsers()[len(prefix)%10])
	b.Body = encodeBatch(0, b.Events, nil)
	res := post(ctx, base, b.Body)
	return &ingestAttempt{batch: b, id: res.id}
}

// ingestOutcome returns the workload of the stored batches, the number of
// acknowledged batches and how many of those are not stored.
func ingestOutcome(attempts []*ingestAttempt, stored map[string][]byte) (w *workload, acked, lost int) {
	storedPrefix := map[string]bool{}
	for _, body := range stored {
		if b, err := mparticle.Decode(body); err == nil && len(b.Events) > 0 {
			storedPrefix[b.Events[0].SourceMessageID] = true
		}
	}
	w = &workload{byID: map[string]*eventSpec{}}
	for _, a := range attempts {
		if a.id != "" {
			acked++
			if _, ok := stored[a.id]; !ok {
				lost++
			}
		}
		if _, ok := stored[a.id]; ok || storedPrefix[a.batch.Events[0].ID] {
			w.Batches = append(w.Batches, a.batch)
			for _, ev := range a.batch.Events {
				w.byID[ev.ID] = ev
			}
		}
	}
	return w, acked, lost
}
