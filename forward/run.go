package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/mparticle"
	"github.com/layover-dev/layover/queue"
)

// heldMessage is a received message whose events are not all resolved yet.
type heldMessage struct {
	msg         queue.Message
	outstanding int // events still waiting for a trackBulk outcome
	rejections  []queue.Rejection
	done        bool
}

// pendingEvent is a mapped event waiting to be packed into a request.
type pendingEvent struct {
	event iterable.Event
	json  []byte
	owner *heldMessage
}

// run is the state of one Forwarder.Run call.
type run struct {
	f        *Forwarder
	log      *slog.Logger
	started  time.Time
	report   Report
	held     []*heldMessage // received and not yet deleted or released
	pending  []pendingEvent
	toDelete []*heldMessage
	drained  bool
	// arena is the free end of the buffer that events are encoded into,
	// so that encoding allocates once per many events.
	arena []byte
	// emptyReceives counts empty receives in a row.
	emptyReceives int
	deleteErr     error

	// retryMu guards retryWaited, which the goroutines of the requests in
	// flight share.
	retryMu     sync.Mutex
	retryWaited time.Duration
}

// drain receives, maps and sends until the queue is empty. Up to
// Concurrency requests are in flight at once, paced by the client, and
// while they are, the run receives and maps the events of the next one, so
// that Iterable's response time does not limit the rate. At most
// Concurrency+1 requests' worth of messages are held at once.
func (r *run) drain(ctx context.Context) error {
	requestCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inflight []<-chan requestResult
	// stop ends the requests in flight and applies what they resolved, so
	// that their delivered events are deleted rather than released.
	stop := func(err error) error {
		cancel()
		for _, done := range inflight {
			_ = r.finishRequest(done)
		}
		return err
	}
	for {
		for !r.drained && len(r.pending) < r.f.opts.MaxEvents {
			if err := r.receive(ctx); err != nil {
				return stop(err)
			}
			r.flushDeletes(false)
		}
		if len(inflight) > 0 && (len(inflight) >= r.f.opts.Concurrency || len(r.pending) == 0) {
			err := r.finishRequest(inflight[0])
			inflight = inflight[1:]
			if err != nil {
				return stop(err)
			}
			r.flushDeletes(false)
			continue
		}
		if len(r.pending) == 0 {
			return nil
		}
		inflight = append(inflight, r.startRequest(requestCtx, r.takeRequest()))
	}
}

// receive fetches one batch of messages and maps their events.
func (r *run) receive(ctx context.Context) error {
	if max := r.f.opts.MaxRunTime; max > 0 && time.Since(r.started) > max {
		r.log.Info("run time limit reached; leaving the rest for the next run", "max_run_time", max)
		r.drained = true
		return nil
	}
	msgs, err := r.f.queue.Receive(ctx, queue.MaxReceiveBatch, r.f.opts.Visibility)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	if len(msgs) == 0 {
		r.drained = r.confirmEmpty(ctx)
		return nil
	}
	r.emptyReceives = 0
	r.report.Received += len(msgs)
	for _, m := range msgs {
		r.accept(m)
	}
	return nil
}

// maxEmptyReceives bounds how often a run receives again after an empty
// receive while the queue still reports visible messages.
const maxEmptyReceives = 3

// confirmEmpty reports whether an empty receive means the queue is drained.
// SQS samples a subset of its servers on a receive without waiting, so an
// empty response can come while messages remain. The queue's count of
// visible messages decides, a few times at most.
func (r *run) confirmEmpty(ctx context.Context) bool {
	r.emptyReceives++
	if r.emptyReceives > maxEmptyReceives {
		return true
	}
	st, err := r.f.queue.Stats(ctx)
	if err != nil {
		r.log.Warn("queue stats after an empty receive failed; ending the run", "error", err)
		return true
	}
	if st.Visible == 0 {
		return true
	}
	r.log.Debug("empty receive while messages are visible; receiving again", "visible", st.Visible)
	return false
}

// accept decodes and maps one message and queues its events.
func (r *run) accept(m queue.Message) {
	results, err := r.mapMessage(m.Body)
	if err != nil {
		// The message stays hidden until its visibility timeout, and the
		// queue dead-letters it after the maximum receive count.
		r.report.Poison++
		r.log.Error("message cannot be decoded; it will be retried and dead-lettered after the maximum receive count",
			"message_id", m.ID, "receive_count", m.ReceiveCount, "error", err)
		return
	}
	h := &heldMessage{msg: m}
	r.held = append(r.held, h)
	for _, res := range results {
		switch res.Outcome {
		case mapping.Forward:
			r.queueEvent(h, res.Event)
		case mapping.Reject:
			body, _ := json.Marshal(res.Event)
			h.rejections = append(h.rejections, r.rejection(h, res.Event, body, res.Reason))
			r.report.Rejected++
		default:
			r.report.Skipped++
			r.logSkip(m, res)
		}
	}
	if len(results) == 0 {
		// A batch whose events member is missing, null or an empty array,
		// such as one that only changes user attributes, has nothing to
		// forward. Any other events value fails mparticle.Decode, so such a
		// batch never reaches this branch. The run's report counts the
		// empty batch, so that the deletion is not silent.
		r.report.Empty++
		r.log.Debug("batch has no events; deleting it", "message_id", m.ID)
	}
	if h.outstanding == 0 {
		r.complete(h)
	}
}

// logSkip logs a skipped event: at debug level when the mapping turns its
// type off, and as a warning when the event is not a JSON object with an
// event_type, which mParticle never sends.
func (r *run) logSkip(m queue.Message, res mapping.Result) {
	if res.EventType == "" {
		r.log.Warn("event skipped: it is not a JSON object with an event_type",
			"message_id", m.ID, "event_index", res.Index, "reason", res.Reason)
		return
	}
	r.log.Debug("event skipped", "message_id", m.ID, "event_index", res.Index, "event_type", res.EventType, "reason", res.Reason)
}

// mapMessage decodes a body and maps it, turning a panic in the mapping into
// an error so that one bad message cannot stop the forwarder.
func (r *run) mapMessage(body []byte) (results []mapping.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mapping panicked: %v", p)
		}
	}()
	batch, err := mparticle.Decode(body)
	if err != nil {
		return nil, err
	}
	return r.f.mapper.Map(batch), nil
}

func (r *run) queueEvent(h *heldMessage, ev iterable.Event) {
	body, err := r.encode(&ev)
	if err != nil {
		h.rejections = append(h.rejections, r.rejection(h, ev, nil, "event cannot be encoded as JSON: "+err.Error()))
		r.report.Rejected++
		return
	}
	if len(body) > r.f.opts.MaxRequestBytes-requestOverhead {
		reason := fmt.Sprintf("event is %d bytes, more than one trackBulk request may carry (%d)", len(body), r.f.opts.MaxRequestBytes)
		h.rejections = append(h.rejections, r.rejection(h, ev, body, reason))
		r.report.Rejected++
		return
	}
	h.outstanding++
	r.pending = append(r.pending, pendingEvent{event: ev, json: body, owner: h})
}

// arenaSize is the size of one buffer of encoded events.
const arenaSize = 64 << 10

// encode returns the JSON of ev, placed in the arena when it fits there.
func (r *run) encode(ev *iterable.Event) ([]byte, error) {
	if cap(r.arena) < arenaSize/16 {
		r.arena = make([]byte, 0, arenaSize)
	}
	out, err := iterable.AppendEvent(r.arena, ev)
	if err != nil {
		return nil, err
	}
	if len(out) <= cap(r.arena) {
		// append did not move it: keep the rest of the arena for the next.
		r.arena = r.arena[len(out):len(out)]
	}
	return out[:len(out):len(out)], nil
}

// requestOverhead is the JSON around the events: {"events":[...]}.
const requestOverhead = len(`{"events":[]}`)

// takeRequest removes the next request's events from the pending list,
// bounded by MaxEvents and MaxRequestBytes.
func (r *run) takeRequest() []pendingEvent {
	size := requestOverhead
	n := 0
	for n < len(r.pending) && n < r.f.opts.MaxEvents {
		next := len(r.pending[n].json) + 1 // the comma
		if n > 0 && size+next > r.f.opts.MaxRequestBytes {
			break
		}
		size += next
		n++
	}
	batch := r.pending[:n:n]
	r.pending = r.pending[n:]
	return batch
}

func (r *run) rejection(h *heldMessage, ev iterable.Event, body []byte, reason string) queue.Rejection {
	return queue.Rejection{
		MessageID: h.msg.ID,
		EventID:   ev.ID,
		EventName: ev.EventName,
		Reason:    reason,
		Event:     body,
		At:        time.Now().UTC(),
	}
}

func (r *run) deliver(p pendingEvent) {
	r.report.Delivered++
	r.resolve(p.owner)
}

func (r *run) reject(p pendingEvent, reason string) {
	p.owner.rejections = append(p.owner.rejections, r.rejection(p.owner, p.event, p.json, reason))
	r.report.Rejected++
	r.resolve(p.owner)
}

func (r *run) resolve(h *heldMessage) {
	h.outstanding--
	if h.outstanding == 0 {
		r.complete(h)
	}
}

func (r *run) complete(h *heldMessage) {
	h.done = true
	r.toDelete = append(r.toDelete, h)
}
