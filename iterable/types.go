// Package iterable is a client for Iterable's bulk event API,
// POST /api/events/trackBulk, with request pacing and typed errors.
package iterable

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Hosts of Iterable's two data centers. An API key works only on the host
// of the data center its project lives in.
const (
	USBaseURL = "https://api.iterable.com"
	EUBaseURL = "https://api.eu.iterable.com"
)

// TrackBulkPath is the path of the bulk event endpoint.
const TrackBulkPath = "/api/events/trackBulk"

// Event is one element of a trackBulk request (Iterable's TrackRequest).
type Event struct {
	Email      string         `json:"email,omitempty"`
	UserID     string         `json:"userId,omitempty"`
	EventName  string         `json:"eventName"`
	ID         string         `json:"id,omitempty"`
	CreatedAt  int64          `json:"createdAt,omitempty"` // Unix seconds
	DataFields map[string]any `json:"dataFields,omitempty"`
}

// BulkTrackRequest is the body of a trackBulk request.
type BulkTrackRequest struct {
	Events []Event `json:"events"`
}

// FailedEventUpdates lists the users whose events failed in a 200 response.
type FailedEventUpdates struct {
	InvalidEmails    []string `json:"invalidEmails,omitempty"`
	InvalidUserIDs   []string `json:"invalidUserIds,omitempty"`
	NotFoundEmails   []string `json:"notFoundEmails,omitempty"`
	NotFoundUserIDs  []string `json:"notFoundUserIds,omitempty"`
	ForgottenEmails  []string `json:"forgottenEmails,omitempty"`
	ForgottenUserIDs []string `json:"forgottenUserIds,omitempty"`
}

// BulkTrackResponse is the body of a 200 trackBulk response. A 200 may still
// report failed events in FailCount, FailedUpdates and DisallowedEventNames.
type BulkTrackResponse struct {
	SuccessCount         int                `json:"successCount"`
	FailCount            int                `json:"failCount"`
	CreatedFields        []string           `json:"createdFields,omitempty"`
	FilteredOutFields    []string           `json:"filteredOutFields,omitempty"`
	DisallowedEventNames []string           `json:"disallowedEventNames,omitempty"`
	FailedUpdates        FailedEventUpdates `json:"failedUpdates"`
	// Deprecated duplicates of FailedUpdates lists, still sent by Iterable.
	InvalidEmails  []string `json:"invalidEmails,omitempty"`
	InvalidUserIDs []string `json:"invalidUserIds,omitempty"`
}

// ErrorResponse is Iterable's error body (IterableApiResponse).
type ErrorResponse struct {
	Msg    string         `json:"msg"`
	Code   string         `json:"code"`
	Params map[string]any `json:"params"`
}

// Error codes the relay branches on.
const (
	CodeBadAPIKey                    = "BadApiKey"
	CodeBadJSONBody                  = "BadJsonBody"
	CodeRateLimitExceeded            = "RateLimitExceeded"
	CodeRequestFieldsTypesMismatched = "RequestFieldsTypesMismatched"
	CodeBatchTooLarge                = "BatchTooLarge"
)

// ErrUnauthorized matches an APIError with status 401 or 403: the key is
// wrong, disabled or lacks permission. No retry can fix that.
var ErrUnauthorized = errors.New("iterable: API key rejected")

// APIError is a non-200 response. Body is kept (truncated) because 429 and
// 5xx responses are often plain text or HTML, not Iterable's JSON.
type APIError struct {
	StatusCode int
	Code       string // from a JSON body, else ""
	Msg        string // from a JSON body, else a text excerpt of Body
	Params     map[string]any
	RetryAfter time.Duration // from the Retry-After header, else 0
	Body       string        // at most 1 KiB of the raw body
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "iterable: HTTP %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Msg != "" {
		fmt.Fprintf(&b, ": %s", e.Msg)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnauthorized) true for 401 and 403.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && (e.StatusCode == 401 || e.StatusCode == 403)
}

// Temporary reports whether a later retry of the same request may succeed:
// 408, 429 and every 5xx.
func (e *APIError) Temporary() bool {
	return e.StatusCode == 408 || e.StatusCode == 429 || e.StatusCode >= 500
}
