package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/layover-dev/layover/iterable"
)

// requestResult is the outcome of sending one request's events: an outcome
// per resolved event, the attempts made, and the error that stops the run,
// if any. The goroutine that sends fills it, and the run's own goroutine
// applies it, so that only one goroutine changes the run's state.
type requestResult struct {
	outcomes []eventOutcome
	requests int // trackBulk requests sent, retries included
	retries  int
	err      error
}

// eventOutcome resolves one event: delivered when reason is "", else
// rejected for reason.
type eventOutcome struct {
	event  pendingEvent
	reason string
}

// startRequest sends batch in its own goroutine and returns the channel
// that receives the result, so that the run can receive and map the next
// messages while Iterable processes this request.
func (r *run) startRequest(ctx context.Context, batch []pendingEvent) <-chan requestResult {
	done := make(chan requestResult, 1)
	go func() {
		var res requestResult
		res.err = r.send(ctx, batch, &res)
		done <- res
	}()
	return done
}

// finishRequest waits for the request in flight, if any, and applies its
// outcomes. It returns the error that stops the run.
func (r *run) finishRequest(inflight <-chan requestResult) error {
	if inflight == nil {
		return nil
	}
	res := <-inflight
	r.report.Requests += res.requests
	r.report.Retries += res.retries
	for _, o := range res.outcomes {
		if o.reason == "" {
			r.deliver(o.event)
		} else {
			r.reject(o.event, o.reason)
		}
	}
	return res.err
}

// send delivers one request's events and records an outcome for each of
// them in res. A 400-class response that blames the content is narrowed
// down by splitting the request in halves, so one bad event cannot block
// the others. It returns an error only when the run must stop: the key was
// rejected, Iterable stayed unavailable past the retry budget, or the
// context ended. It changes no state of the run except retryWaited, through
// reserveWait.
func (r *run) send(ctx context.Context, batch []pendingEvent, res *requestResult) error {
	resp, err := r.trackBulk(ctx, batch, res)
	if err == nil {
		r.resolveResponse(batch, resp, res)
		return nil
	}
	var apiErr *iterable.APIError
	if !errors.As(err, &apiErr) || !blamesContent(apiErr) {
		return err
	}
	if len(batch) == 1 {
		res.outcomes = append(res.outcomes, eventOutcome{batch[0], "Iterable rejected the event: " + describe(apiErr)})
		return nil
	}
	r.log.Info("request rejected for its content; splitting it to find the bad events",
		"events", len(batch), "status", apiErr.StatusCode, "code", apiErr.Code)
	mid := len(batch) / 2
	if err := r.send(ctx, batch[:mid], res); err != nil {
		return err
	}
	return r.send(ctx, batch[mid:], res)
}

// blamesContent reports whether a response rejects what was sent rather
// than who sent it or when: a bad JSON type, a field type conflict, a
// batch too large, or another 400, 409, 413 or 422.
func blamesContent(e *iterable.APIError) bool {
	switch e.StatusCode {
	case 400, 409, 413, 422:
		return true
	}
	return false
}

func describe(e *iterable.APIError) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, ": %s", e.Msg)
	}
	if len(e.Params) > 0 {
		keys := make([]string, 0, len(e.Params))
		for k := range e.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, " (%s)", strings.Join(keys, ", "))
	}
	return b.String()
}

// trackBulk sends one request, retrying 429, 5xx and network errors with
// full-jitter exponential backoff within the run's retry budget.
func (r *run) trackBulk(ctx context.Context, batch []pendingEvent, res *requestResult) (*iterable.BulkTrackResponse, error) {
	opts := r.f.opts
	for attempt := 1; ; attempt++ {
		res.requests++
		resp, err := r.post(ctx, batch)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, iterable.ErrUnauthorized) {
			return nil, fmt.Errorf("trackBulk: %w (check ITERABLE_API_KEY and that ITERABLE_BASE_URL is the key's data center): %v",
				iterable.ErrUnauthorized, err)
		}
		var apiErr *iterable.APIError
		if errors.As(err, &apiErr) && !apiErr.Temporary() {
			return nil, err
		}
		wait := r.backoff(attempt, apiErr)
		if attempt >= opts.MaxAttempts || !r.reserveWait(wait) {
			return nil, fmt.Errorf("%w after %d attempts: %v", ErrDestinationUnavailable, attempt, err)
		}
		res.retries++
		r.log.Warn("trackBulk failed; retrying", "attempt", attempt, "wait", wait.Round(time.Millisecond), "error", err)
		if err := opts.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// post sends batch once. When the sender takes encoded events, it sends the
// JSON that queueEvent encoded to size the request, so that no event is
// encoded twice.
func (r *run) post(ctx context.Context, batch []pendingEvent) (*iterable.BulkTrackResponse, error) {
	if s, ok := r.f.sender.(EncodedSender); ok {
		encoded := make([]json.RawMessage, len(batch))
		for i, p := range batch {
			encoded[i] = p.json
		}
		return s.TrackBulkJSON(ctx, encoded)
	}
	events := make([]iterable.Event, len(batch))
	for i, p := range batch {
		events[i] = p.event
	}
	return r.f.sender.TrackBulk(ctx, events)
}

// backoff returns the wait before the next attempt: Retry-After when
// Iterable sent one, else a random wait up to 1s·2^(attempt-1), both capped
// at MaxBackoff.
func (r *run) backoff(attempt int, apiErr *iterable.APIError) time.Duration {
	limit := r.f.opts.MaxBackoff
	if apiErr != nil && apiErr.RetryAfter > 0 {
		return min(apiErr.RetryAfter, limit)
	}
	ceiling := min(time.Second<<min(attempt-1, 20), limit)
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

// resolveResponse records each event of a 200 response as delivered or
// rejected. Iterable reports failures only by email, userId and event name,
// so every event that matches a failure list is rejected with that list as
// reason.
func (r *run) resolveResponse(batch []pendingEvent, resp *iterable.BulkTrackResponse, res *requestResult) {
	failures := newFailureIndex(resp)
	rejected := 0
	for _, p := range batch {
		reason := failures.reason(p.event)
		if reason != "" {
			rejected++
		}
		res.outcomes = append(res.outcomes, eventOutcome{p, reason})
	}
	if resp.FailCount > rejected {
		r.log.Warn("Iterable reported more failed events than the failure lists name; those events count as delivered",
			"fail_count", resp.FailCount, "matched", rejected, "events", len(batch))
	}
}

// reserveWait adds wait to the time the run has waited between retries and
// reports whether that stays within the retry budget. The requests in
// flight share one budget.
func (r *run) reserveWait(wait time.Duration) bool {
	r.retryMu.Lock()
	defer r.retryMu.Unlock()
	if r.retryWaited+wait > r.f.opts.RetryBudget {
		return false
	}
	r.retryWaited += wait
	return true
}
