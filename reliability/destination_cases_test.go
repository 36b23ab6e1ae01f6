package reliability

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
)

// Bodies of the simulated faults.
const (
	internalErrorPage = "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n" +
		"<body><h1>Internal Server Error</h1></body></html>\n"
	badGatewayPage = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n" +
		"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
	gatewayTimeoutPage = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n" +
		"<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
	rateLimitJSON = `{"msg":"Exceeded rate limit.","code":"RateLimitExceeded","params":null}`
	// disabledKeyJSON is the 401 that the simulator sends for a revoked key.
	disabledKeyJSON = `{"msg":"Disabled API key or insufficient privileges","code":"BadApiKey",` +
		`"params":{"apiKeyType":"ServerSide","endpoint":"/api/events/trackBulk","ip":"127.0.0.1"}}`
)

// retryAfter is a Retry-After header of seconds.
func retryAfter(seconds string) http.Header {
	return http.Header{"Retry-After": {seconds}}
}

func destinationCases() []destCase {
	cases := []destCase{
		{name: "no fault"},
		{name: "HTML 503 from a load balancer, 3 requests",
			faults: []iterabletest.Fault{{Status: 503, Body: iterabletest.ServiceUnavailablePage, Count: 3}}},
		{name: "HTML 500, 502 and 504 and a JSON 502",
			faults: []iterabletest.Fault{
				{Status: 500, Body: internalErrorPage, Count: 1},
				{Status: 502, Body: badGatewayPage, Count: 1},
				{Status: 504, Body: gatewayTimeoutPage, Count: 1},
				{Status: 502, Body: iterabletest.BadGatewayJSON, Count: 1},
			}},
	}
	cases = append(cases, rateLimitCases()...)
	cases = append(cases, networkCases()...)
	cases = append(cases, outageCases()...)
	cases = append(cases, contentCases()...)
	return cases
}

// rateLimitCases are 429 responses in each shape Iterable has been seen to
// send, injected and from the simulator's own rate limiter.
func rateLimitCases() []destCase {
	waitsOf := func(want time.Duration) func(*rig, int, forward.Report, error) error {
		return func(r *rig, _ int, _ forward.Report, err error) error {
			if err != nil {
				return err
			}
			for _, w := range r.waits {
				if w != want {
					return fmt.Errorf("waited %s before a retry, want %s from Retry-After", w, want)
				}
			}
			return nil
		}
	}
	limited := func(body iterabletest.RateLimitBody, after time.Duration) iterabletest.Options {
		return iterabletest.Options{RateLimit: 20, RateBurst: 2, RateLimitBody: body, RetryAfter: after}
	}
	small := func(o *forward.Options) { o.MaxEvents = 25; o.MaxAttempts = 10 }
	return []destCase{
		{name: "JSON 429 with Retry-After, 2 requests", afterRun: waitsOf(2 * time.Second),
			faults: []iterabletest.Fault{{Status: 429, Body: rateLimitJSON, Header: retryAfter("2"), Count: 2}}},
		{name: "JSON 429 without Retry-After, 2 requests",
			faults: []iterabletest.Fault{{Status: 429, Body: rateLimitJSON, Count: 2}}},
		{name: "plain-text 429 with Retry-After, 2 requests", afterRun: waitsOf(3 * time.Second),
			faults: []iterabletest.Fault{{Status: 429, Body: iterabletest.RateLimitTextBody, Header: retryAfter("3"), Count: 2}}},
		{name: "plain-text 429 without Retry-After, 2 requests",
			faults: []iterabletest.Fault{{Status: 429, Body: iterabletest.RateLimitTextBody, Count: 2}}},
		{name: "rate limiter at 20/s, JSON 429", sim: limited(iterabletest.RateLimitJSON, 0),
			forward: small, scaledSleep: true},
		{name: "rate limiter at 20/s, text 429 with Retry-After", sim: limited(iterabletest.RateLimitText, time.Second),
			forward: small, scaledSleep: true},
	}
}

// networkCases are timeouts, resets, slow responses and lost responses.
func networkCases() []destCase {
	dropped := 0
	return []destCase{
		{name: "no response until the client times out, 2 requests", clientTimeout: 300 * time.Millisecond,
			faults: []iterabletest.Fault{{Hang: true, Count: 2}}},
		{name: "connection reset, 3 requests",
			faults: []iterabletest.Fault{{Reset: true, Count: 3}}},
		{name: "every response 150 ms slow",
			faults: []iterabletest.Fault{{Latency: 150 * time.Millisecond}},
			trials: func(r *rig) int { return r.dest.requestCount() }},
		{name: "response slower than the client timeout, 1 request", clientTimeout: 300 * time.Millisecond,
			mayRedeliver: true,
			faults:       []iterabletest.Fault{{Latency: time.Second, Count: 1}}},
		{name: "response lost after Iterable stored the events, 2 requests", mayRedeliver: true,
			prepare: func(t *testing.T, r *rig) {
				r.dest.afterStore = func(n int, stored []string) (responseAction, func()) {
					if n == 2 || n == 4 {
						dropped++
						return dropResponse, nil
					}
					return sendResponse, nil
				}
			},
			trials: func(*rig) int { return dropped }},
		{name: "30% of requests get HTML 503 (seeded)", sim: iterabletest.Options{Seed: 7},
			forward: func(o *forward.Options) { o.MaxEvents = 25; o.MaxAttempts = 10 },
			faults:  []iterabletest.Fault{{Status: 503, Body: iterabletest.ServiceUnavailablePage, Fraction: 0.3}}},
	}
}

// outageCases are failures that stop a run: a long outage and a revoked
// key. The messages must come back for the next run without counting
// toward the dead-letter limit.
func outageCases() []destCase {
	revoked := false
	return []destCase{
		{name: "HTML 503 for 6 runs, then recovery", maxReceiveCount: 2, runs: 7,
			faults:   []iterabletest.Fault{{Status: 503, Body: iterabletest.ServiceUnavailablePage}},
			forward:  func(o *forward.Options) { o.MaxAttempts = 3 },
			afterRun: expectError(forward.ErrDestinationUnavailable, 6, func(r *rig) { r.dest.sim.ClearFaults() })},
		{name: "API key revoked mid-run, then restored", mayRedeliver: true, runs: 2,
			forward: func(o *forward.Options) { o.MaxEvents = 50 },
			prepare: func(t *testing.T, r *rig) {
				r.dest.afterStore = func(n int, _ []string) (responseAction, func()) {
					if n == 2 && !revoked {
						revoked = true
						if err := r.dest.sim.InjectFault(iterabletest.Fault{Status: 401, Body: disabledKeyJSON}); err != nil {
							t.Error(err)
						}
					}
					return sendResponse, nil
				}
			},
			afterRun: expectError(iterable.ErrUnauthorized, 1, func(r *rig) { r.dest.sim.ClearFaults() })},
	}
}

// contentCases are per-event failures: every failedUpdates list,
// disallowed event names, a field type conflict and an undecodable batch.
func contentCases() []destCase {
	return []destCase{
		{name: "failedUpdates in a hybrid project", prepare: prepareHybridFailures, trials: failedByIterable,
			sim: iterabletest.Options{Projects: []iterabletest.Project{{
				APIKey: iterabletest.DefaultAPIKey, Forgotten: []iterabletest.User{{UserID: "user-gone"}},
			}}}},
		{name: "failedUpdates in an email-based project", prepare: prepareEmailFailures, trials: failedByIterable,
			sim: iterabletest.Options{Projects: []iterabletest.Project{{
				APIKey: iterabletest.DefaultAPIKey, Type: iterabletest.EmailBased, Users: knownUsers(),
				Forgotten: []iterabletest.User{{Email: "forgotten@example.com"}},
			}}}},
		{name: "disallowed event name Session End",
			sim: iterabletest.Options{Projects: []iterabletest.Project{{
				APIKey: iterabletest.DefaultAPIKey, DisallowedEventNames: []string{"Session End"},
			}}},
			prepare: func(t *testing.T, r *rig) {
				r.work.rejectWhere(func(ev *eventSpec) bool { return ev.Name == "Session End" }, "disallowedEventNames")
			},
			trials: failedByIterable},
		{name: "field type conflict on one event of 420 in one request", prepare: prepareTypeConflict,
			forward: func(o *forward.Options) { o.MaxEvents = 1000 }},
		{name: "undecodable batch", maxReceiveCount: 2, wantDead: 1, runs: 3,
			forward: func(o *forward.Options) { o.Visibility = 500 * time.Millisecond },
			prepare: func(t *testing.T, r *rig) {
				r.work.Batches = append(r.work.Batches, &batchSpec{Body: []byte(`{"events": [{"event_type": "screen_view"`)})
			},
			afterRun: func(r *rig, _ int, report forward.Report, err error) error {
				if report.Poison > 0 {
					time.Sleep(550 * time.Millisecond) // until the poison message is visible again
				}
				return err
			},
			trials: func(r *rig) int { return 1 }},
	}
}

// failedByIterable counts the events that Iterable fails in a 200
// response: those expected to be rejected with a failure list's name.
func failedByIterable(r *rig) int {
	n := 0
	for _, list := range []string{"invalidEmails", "invalidUserIds", "notFoundEmails", "notFoundUserIds",
		"forgottenEmails", "forgottenUserIds", "disallowedEventNames"} {
		n += r.work.countReason(list)
	}
	return n
}

// knownUsers returns the base users as profiles of an email-based project.
func knownUsers() []iterabletest.User {
	var users []iterabletest.User
	for _, u := range baseUsers() {
		users = append(users, iterabletest.User{Email: u.Email, UserID: u.UserID})
	}
	return users
}

// prepareHybridFailures adds batches that a hybrid project fails with
// forgottenUserIds, invalidEmails and invalidUserIds.
func prepareHybridFailures(t *testing.T, r *rig) {
	r.work.addRejected("gone", identity{UserID: "user-gone"}, "forgottenUserIds")
	// The mapping accepts any address with one @, but Iterable wants a
	// domain with a dot.
	r.work.addRejected("localhost", identity{Email: "someone@localhost"}, "invalidEmails")
	// Layover and the simulator check userIds alike, so the destination
	// plays an Iterable with a stricter rule for this one.
	r.work.addRejected("reserved", identity{UserID: "user-reserved"}, "invalidUserIds")
	r.dest.invalidUserIDs = map[string]bool{"user-reserved": true}
}

// prepareEmailFailures adds batches that an email-based project fails
// with notFoundEmails, notFoundUserIds and forgottenEmails.
func prepareEmailFailures(t *testing.T, r *rig) {
	r.work.addRejected("stranger", identity{Email: "stranger@example.com"}, "notFoundEmails")
	r.work.addRejected("noemail", identity{UserID: "user-77"}, "notFoundUserIds")
	r.work.addRejected("forgotten", identity{Email: "forgotten@example.com"}, "forgottenEmails")
}

// prepareTypeConflict makes the project type "plan" as a number for Screen
// View, then gives one screen view a text plan. All 420 forwarded events
// share one request, which Iterable rejects whole with 400.
func prepareTypeConflict(t *testing.T, r *rig) {
	seed := []iterable.Event{{UserID: "seed-user", EventName: "Screen View", DataFields: map[string]any{"plan": 7}}}
	if _, err := r.client.TrackBulk(context.Background(), seed); err != nil {
		t.Fatalf("seed the field type: %v", err)
	}
	ev := r.work.byID["w013-1"]
	if ev == nil || ev.Kind != "screen_view" {
		t.Fatal("workload has no screen view w013-1")
	}
	ev.Attrs = map[string]any{"plan": "gold"}
	ev.Want, ev.Reason = wantRejected, iterable.CodeRequestFieldsTypesMismatched
}
