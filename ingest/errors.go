package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/layover-dev/layover/queue"
)

// ErrNoAPIKeys is returned by NewHandler when Options.APIKeys is empty and
// Options.AllowNoAuth is false.
var ErrNoAPIKeys = errors.New("no API key configured: set Options.APIKeys, or Options.AllowNoAuth to accept unauthenticated requests")

// Errors that the handler sends back to the client. Their text is the value
// of "error" in the JSON response, so it never contains a key or body data.
var (
	errMissingKey = errors.New("missing API key: send it as Authorization: Bearer KEY, " +
		"as the password of Authorization: Basic, or as X-API-Key: KEY")
	errInvalidKey          = errors.New("invalid API key")
	errMethodNotAllowed    = errors.New("method not allowed")
	errUnsupportedType     = errors.New("unsupported Content-Type")
	errUnsupportedEncoding = errors.New("unsupported Content-Encoding")
	errBodyTooLarge        = errors.New("request body too large")
	errInvalidGzip         = errors.New("invalid gzip body")
	errEmptyBody           = errors.New("empty request body: send one JSON object")
	errInvalidJSON         = errors.New("request body is not valid JSON")
	errNotObject           = errors.New("request body is not a JSON object")
	errIncompleteBody      = errors.New("request body incomplete")
	errStoreUnavailable    = errors.New("storage unavailable: retry later")
	errServerBusy          = errors.New("too many requests in flight: retry later")
	errForbiddenAddress    = errors.New("forbidden")
	errTooManyAuthFailures = errors.New("too many failed authentications from this address: retry after the time in Retry-After")
	errNotFound            = errors.New("not found")
)

// statusFor maps an error to the HTTP status of its response.
// mParticle retries 408 and 5xx and drops the batch on 400, 409, 413 and
// 414, so anything not known to be the client's fault becomes 503.
func statusFor(err error) int {
	switch {
	case errors.Is(err, errMissingKey), errors.Is(err, errInvalidKey):
		return http.StatusUnauthorized
	case errors.Is(err, errForbiddenAddress):
		return http.StatusForbidden
	case errors.Is(err, errTooManyAuthFailures):
		// 503, not 429: mParticle retries 5xx but documents nothing for 429,
		// and a blocked address may be a proxy that mParticle shares with
		// the client that failed.
		return http.StatusServiceUnavailable
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errUnsupportedType), errors.Is(err, errUnsupportedEncoding):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errBodyTooLarge), errors.Is(err, queue.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errInvalidGzip), errors.Is(err, errEmptyBody),
		errors.Is(err, errInvalidJSON), errors.Is(err, errNotObject):
		return http.StatusBadRequest
	case errors.Is(err, errIncompleteBody):
		return http.StatusRequestTimeout
	default:
		return http.StatusServiceUnavailable
	}
}

// errorResponse is the JSON body of every error response.
type errorResponse struct {
	Error string `json:"error"`
}

// writeError sends err as a JSON error body with the status from statusFor
// and the header that status calls for, such as Retry-After in seconds for
// 429 and 503. It returns the status.
func writeError(w http.ResponseWriter, err error, retryAfter int) int {
	status := statusFor(err)
	header := w.Header()
	switch status {
	case http.StatusUnauthorized:
		header.Add("WWW-Authenticate", `Bearer realm="layover"`)
		header.Add("WWW-Authenticate", `Basic realm="layover", charset="UTF-8"`)
	case http.StatusMethodNotAllowed:
		header.Set("Allow", http.MethodPost)
	case http.StatusUnsupportedMediaType:
		// RFC 7694: a 415 for a content coding lists the accepted codings.
		header.Set("Accept-Encoding", "gzip")
	case http.StatusServiceUnavailable:
		header.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, status, errorResponse{Error: err.Error()})
	return status
}

// writeJSON sends v as a JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the fixed response types of this package reach here, and
		// they always marshal.
		body = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	header := w.Header()
	header.Set("Content-Type", "application/json")
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
