package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"time"

	"github.com/layover-dev/layover/queue"
)

// storedResponse is the JSON body of a 200 response to POST /event-batch.
type storedResponse struct {
	ID string `json:"id"`
}

// serveEventBatch checks, stores and acknowledges one webhook body. Every
// check runs before Send, so a rejected request stores nothing. The checks
// that cost no body read come first: method, client network, key, then a
// slot among the requests in flight.
func (h *handler) serveEventBatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.reject(w, r, fmt.Errorf("%w: %s, use POST", errMethodNotAllowed, r.Method))
		return
	}
	client := clientAddr(r, h.trusted)
	if len(h.allowed) > 0 && !inPrefixes(client, h.allowed) {
		h.reject(w, r, fmt.Errorf("%w: client address %s is not in the allowed networks",
			errForbiddenAddress, describeAddr(client)))
		return
	}
	if h.requireAuth && !h.authorize(w, r, client) {
		return
	}
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		h.reject(w, r, errServerBusy)
		return
	}

	buf, err := readBatch(w, r, h.maxBodyBytes)
	if err != nil {
		h.reject(w, r, err)
		return
	}
	bodyBytes := buf.Len()
	id, err := h.store(r.Context(), buf.Bytes())
	if err != nil {
		// An engine may still read a body whose Send failed, so the
		// buffer is left to the garbage collector.
		h.storeFailed(w, r, err, bodyBytes)
		return
	}
	release(buf)

	ctx := r.Context()
	h.storeLog.recovered(ctx, "store recovered")
	h.logger.DebugContext(ctx, "message stored", "message_id", id, "body_bytes", bodyBytes)
	writeJSON(w, http.StatusOK, storedResponse{ID: id})
	h.metrics.countRequest(http.StatusOK)
}

// store sends body to the queue within the store timeout and records the
// latency and the stored bytes.
func (h *handler) store(ctx context.Context, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
	defer cancel()

	start := time.Now()
	id, err := h.queue.Send(ctx, body)
	h.metrics.storeDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return "", fmt.Errorf("queue send: %w", err)
	}
	h.metrics.storedBytes.Add(float64(len(body)))
	return id, nil
}

// reject sends the error response for a request that will not be stored,
// and logs why without the body.
func (h *handler) reject(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		h.canceled(w, r, err, err)
		return
	}
	status := writeError(w, err, h.retryAfter)
	h.metrics.countRequest(status)
	h.rejectLog.failure(r.Context(),
		slog.Int("status", status),
		slog.String("error", err.Error()),
		slog.String("remote_addr", r.RemoteAddr))
}

// storeFailed sends the response for a failed Send: 413 when the queue
// rejects the size, and 503 with Retry-After for every other failure, so
// that mParticle sends the batch again.
func (h *handler) storeFailed(w http.ResponseWriter, r *http.Request, err error, bodyBytes int) {
	ctx := r.Context()
	switch {
	case errors.Is(err, queue.ErrTooLarge):
		h.reject(w, r, err)
	case ctx.Err() != nil:
		h.canceled(w, r, errStoreUnavailable, err)
	default:
		h.storeLog.failure(ctx, slog.Any("error", err), slog.Int("body_bytes", bodyBytes))
		h.metrics.countRequest(writeError(w, errStoreUnavailable, h.retryAfter))
	}
}

// authorize checks the API key of r, unless the client is blocked for too
// many failed attempts, and counts a failure against the client. It sends
// the error response and returns false when the request must stop.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, client netip.Addr) bool {
	if h.authLimiter != nil {
		if wait, blocked := h.authLimiter.blocked(client); blocked {
			h.rejectBlocked(w, r, client, wait)
			return false
		}
	}
	err := h.keys.keys().authenticate(r)
	if err == nil {
		return true
	}
	if h.authLimiter != nil && !h.authLimiter.fail(client) {
		h.limitLog.failure(r.Context(), slog.String("client_addr", describeAddr(client)))
	}
	h.rejectAuth(w, r, err)
	return false
}

// rejectBlocked sends 503 with Retry-After set to the end of the client's
// window, without looking at the key the request carries.
func (h *handler) rejectBlocked(w http.ResponseWriter, r *http.Request, client netip.Addr, wait time.Duration) {
	retryAfter := int(math.Ceil(wait.Seconds()))
	h.metrics.countRequest(writeError(w, errTooManyAuthFailures, retryAfter))
	h.blockLog.failure(r.Context(),
		slog.String("client_addr", describeAddr(client)),
		slog.Int("retry_after_seconds", retryAfter))
}

// describeAddr returns addr as text, or "unknown" for the zero Addr.
func describeAddr(addr netip.Addr) string {
	if !addr.IsValid() {
		return "unknown"
	}
	return addr.String()
}

// rejectAuth sends 401 and counts the failure. The log line contains the
// reason and the client address, never the key.
func (h *handler) rejectAuth(w http.ResponseWriter, r *http.Request, err error) {
	reason := authReasonInvalid
	if errors.Is(err, errMissingKey) {
		reason = authReasonMissing
	}
	h.metrics.authFailures.WithLabelValues(reason).Inc()
	h.metrics.countRequest(writeError(w, err, h.retryAfter))
	h.authLog.failure(r.Context(),
		slog.String("reason", reason),
		slog.String("remote_addr", r.RemoteAddr))
}

// canceled handles a request whose context ended: the client went away, or
// the server's read deadline passed. It still sends the error response,
// because a handler that writes nothing makes net/http send 200, which
// mParticle would take as stored.
func (h *handler) canceled(w http.ResponseWriter, r *http.Request, response, cause error) {
	status := writeError(w, response, h.retryAfter)
	h.metrics.canceled.Inc()
	h.logger.DebugContext(r.Context(), "request canceled",
		"status", status, "error", cause, "remote_addr", r.RemoteAddr)
}
