package iterabletest

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/layover-dev/layover/iterable"
)

// RateLimitBody selects the body of a simulated 429 response. Iterable's
// own test fixtures show JSON, while a field report got plain text.
type RateLimitBody int

const (
	// RateLimitJSON sends {"msg":"Exceeded rate limit.",
	// "code":"RateLimitExceeded","params":null}.
	RateLimitJSON RateLimitBody = iota
	// RateLimitText sends the plain text RateLimitTextBody.
	RateLimitText
)

// RateLimitTextBody is the plain-text 429 body that Iterable sent in a
// field report.
const RateLimitTextBody = "Rate limit exceeded. Please try again later."

// rateSettings is the trackBulk limit shared by every project, and the
// shape of the 429 it produces. Server.mu guards it.
type rateSettings struct {
	enabled    bool
	limit      rate.Limit
	burst      int
	body       RateLimitBody
	retryAfter time.Duration
	// limiters holds one token bucket per project number.
	limiters map[int]*rate.Limiter
}

// newRateSettings applies the defaults to the rate options in opts.
func newRateSettings(opts Options) rateSettings {
	rs := rateSettings{
		body:       opts.RateLimitBody,
		retryAfter: opts.RetryAfter,
		limiters:   make(map[int]*rate.Limiter),
	}
	rs.set(opts.RateLimit, opts.RateBurst)
	return rs
}

// set changes the limit. A zero rps or burst selects the default, and a
// negative rps turns the limit off.
func (rs *rateSettings) set(rps float64, burst int) {
	if rps == 0 {
		rps = DefaultRateLimit
	}
	if burst <= 0 {
		burst = DefaultRateBurst
	}
	rs.enabled = rps > 0
	rs.limit = rate.Limit(rps)
	rs.burst = burst
	clear(rs.limiters)
}

// allow takes a token from the project's bucket and reports whether the
// request is within the limit.
func (rs *rateSettings) allow(projectNumber int, now time.Time) bool {
	if !rs.enabled {
		return true
	}
	limiter := rs.limiters[projectNumber]
	if limiter == nil {
		limiter = rate.NewLimiter(rs.limit, rs.burst)
		rs.limiters[projectNumber] = limiter
	}
	return limiter.AllowN(now, 1)
}

// SetRateLimit changes the trackBulk limit of every project and refills
// their buckets. A zero rps or burst selects the default, and a negative
// rps turns rate limiting off.
func (s *Server) SetRateLimit(rps float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.set(rps, burst)
}

// SetRateLimitResponse changes the body of later 429 responses and their
// Retry-After header, which is left out when retryAfter is not positive.
func (s *Server) SetRateLimitResponse(body RateLimitBody, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.body = body
	s.limits.retryAfter = retryAfter
}

// writeRateLimited sends a 429 in the configured shape.
func writeRateLimited(w http.ResponseWriter, body RateLimitBody, retryAfter time.Duration) {
	if retryAfter > 0 {
		seconds := int64(math.Ceil(retryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(seconds, 10))
	}
	if body == RateLimitText {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(RateLimitTextBody))
		return
	}
	writeError(w, http.StatusTooManyRequests, iterable.CodeRateLimitExceeded,
		"Exceeded rate limit.", nil)
}
