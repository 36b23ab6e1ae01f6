package iterable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Client defaults. A zero value in ClientOptions selects them.
const (
	// DefaultTimeout bounds one trackBulk request, from sending the request
	// to reading the whole response.
	DefaultTimeout = 30 * time.Second
	// DefaultRequestsPerSecond paces trackBulk below Iterable's published
	// limit of 10 requests per second per project.
	DefaultRequestsPerSecond = 8.0
	// DefaultUserAgent is the User-Agent header sent when none is set.
	DefaultUserAgent = "layover"
)

// maxResponseBytes caps how much of a response body the client reads. A
// trackBulk response lists at most one entry per event sent, so a larger
// body is not a response from Iterable.
const maxResponseBytes = 16 << 20

// ClientOptions configures a Client. The zero value of each field except
// APIKey selects its default.
type ClientOptions struct {
	// BaseURL is the scheme and host of the API, with an optional port.
	// Default USBaseURL. EU projects need EUBaseURL.
	BaseURL string
	// APIKey is a server-side key of the Iterable project. Required.
	APIKey string
	// HTTPClient sends the requests. Default: a new http.Client with no
	// timeout of its own, because Timeout applies per request.
	HTTPClient *http.Client
	// Timeout bounds each request. Default DefaultTimeout.
	Timeout time.Duration
	// RequestsPerSecond is the maximum rate of TrackBulk calls, with a burst
	// of 1. Default DefaultRequestsPerSecond.
	RequestsPerSecond float64
	// UserAgent is sent in the User-Agent header. Default DefaultUserAgent.
	UserAgent string
}

// Client sends events to Iterable's trackBulk endpoint. It is safe for
// concurrent use, and concurrent calls share one pace.
type Client struct {
	endpoint   string
	apiKey     string
	httpClient *http.Client
	timeout    time.Duration
	limiter    *rate.Limiter
	userAgent  string
}

// NewClient validates opts and returns a Client. The error names the
// setting at fault: ITERABLE_API_KEY, ITERABLE_BASE_URL or the option.
func NewClient(opts ClientOptions) (*Client, error) {
	endpoint, err := trackBulkEndpoint(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := validateAPIKey(opts.APIKey); err != nil {
		return nil, err
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("iterable: invalid Timeout %s: must not be negative", opts.Timeout)
	}
	if opts.RequestsPerSecond < 0 {
		return nil, fmt.Errorf("iterable: invalid RequestsPerSecond %g: must not be negative",
			opts.RequestsPerSecond)
	}

	c := &Client{
		endpoint:   endpoint,
		apiKey:     opts.APIKey,
		httpClient: opts.HTTPClient,
		timeout:    opts.Timeout,
		userAgent:  opts.UserAgent,
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	rps := opts.RequestsPerSecond
	if rps == 0 {
		rps = DefaultRequestsPerSecond
	}
	c.limiter = rate.NewLimiter(rate.Limit(rps), 1)
	return c, nil
}

// trackBulkEndpoint returns the trackBulk URL under baseURL, or USBaseURL
// when baseURL is empty.
func trackBulkEndpoint(baseURL string) (string, error) {
	if baseURL == "" {
		baseURL = USBaseURL
	}
	if err := CheckBaseURL(baseURL); err != nil {
		return "", err
	}
	u, _ := url.Parse(baseURL) // CheckBaseURL parsed it
	return u.Scheme + "://" + u.Host + TrackBulkPath, nil
}

// CheckBaseURL returns an error unless raw is a usable ITERABLE_BASE_URL:
// http or https, a host with an optional port from 1 to 65535, and no
// path beyond "/", query, fragment or user info. The error never contains
// a password given in raw.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		hint := ""
		if strings.Count(raw, ":") > 2 {
			hint = ", with an IPv6 address in brackets"
		}
		return fmt.Errorf("iterable: invalid ITERABLE_BASE_URL %q: %v: expected %s or %s%s",
			hideUserInfo(raw), errors.Unwrap(err), USBaseURL, EUBaseURL, hint)
	}
	redacted := u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("iterable: invalid ITERABLE_BASE_URL %q: expected an http or https URL such as %s or %s",
			redacted, USBaseURL, EUBaseURL)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("iterable: invalid ITERABLE_BASE_URL %q: missing host, expected %s or %s",
			redacted, USBaseURL, EUBaseURL)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("iterable: invalid ITERABLE_BASE_URL %q: port %s is not between 1 and 65535", redacted, port)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("iterable: invalid ITERABLE_BASE_URL %q: give the scheme and host only, such as %s; layover adds %s",
			redacted, USBaseURL, TrackBulkPath)
	}
	return nil
}

// hideUserInfo returns raw without what comes before its last "@", where a
// URL keeps a user name and password, for a URL that url.Parse rejected.
func hideUserInfo(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
		return raw[:scheme+3] + "…" + raw[at:]
	}
	return "…" + raw[at:]
}

// validateAPIKey checks the key without ever putting it in the error.
func validateAPIKey(key string) error {
	if key == "" {
		return errors.New("iterable: missing ITERABLE_API_KEY")
	}
	if strings.TrimSpace(key) != key {
		return errors.New("iterable: invalid ITERABLE_API_KEY: leading or trailing whitespace")
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return errors.New("iterable: invalid ITERABLE_API_KEY: " +
				"only printable ASCII characters are allowed")
		}
	}
	return nil
}

// TrackBulk sends events in one trackBulk request, waiting first for its
// turn under RequestsPerSecond. A 200 returns the decoded response, which
// may still report failed events. Any other status returns an *APIError.
// Every other error (network failure, timeout, cancelled ctx, undecodable
// 200 body) is returned wrapped, and callers should treat it as temporary.
func (c *Client) TrackBulk(ctx context.Context, events []Event) (*BulkTrackResponse, error) {
	if events == nil {
		// Iterable requires the events array, so send [] rather than null.
		events = []Event{}
	}
	body, err := json.Marshal(BulkTrackRequest{Events: events})
	if err != nil {
		return nil, fmt.Errorf("iterable: encode trackBulk request: %w", err)
	}
	return c.postTrackBulk(ctx, body)
}

// TrackBulkJSON sends events that the caller has already encoded, each one
// a JSON object as json.Marshal encodes an Event, and otherwise works as
// TrackBulk. A caller that encodes each event anyway, for example to size
// its requests, saves encoding every event a second time.
func (c *Client) TrackBulkJSON(ctx context.Context, events []json.RawMessage) (*BulkTrackResponse, error) {
	size := len(`{"events":[]}`) + len(events)
	for _, e := range events {
		size += len(e)
	}
	body := make([]byte, 0, size)
	body = append(body, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, e...)
	}
	body = append(body, "]}"...)
	return c.postTrackBulk(ctx, body)
}

// postTrackBulk waits for its turn under RequestsPerSecond and sends one
// encoded trackBulk request body.
func (c *Client) postTrackBulk(ctx context.Context, body []byte) (*BulkTrackResponse, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		return nil, fmt.Errorf("iterable: wait for rate limit: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("iterable: build trackBulk request: %w", err)
	}
	req.Header.Set("Api-Key", c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.httpClient.Do(req)
	if err != nil {
		// The *url.Error names the endpoint, never the Api-Key header.
		return nil, fmt.Errorf("iterable: send trackBulk request: %w", err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("iterable: read trackBulk response (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newAPIError(resp, data, time.Now())
	}
	var out BulkTrackResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("iterable: decode trackBulk response: %w", err)
	}
	return &out, nil
}
