package iterable

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		" 7 ":                           7 * time.Second,
		"0":                             0,
		"-5":                            0,
		"soon":                          0,
		"99999999999999":                24 * time.Hour,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 11:59:00 GMT": 0,
	}
	for value, want := range cases {
		if got := parseRetryAfter(value, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", value, got, want)
		}
	}
}

func TestTextExcerpt(t *testing.T) {
	cases := []struct {
		name, contentType, body, want string
	}{
		{"html title", "text/html", "<html><head><TITLE>502 Bad Gateway</TITLE></head><body>x</body></html>",
			"502 Bad Gateway"},
		{"html without title", "text/html",
			"<html><head><style>p{}</style><script>var a;</script></head><body><h1>Down</h1>\n" +
				"<p>Back &amp; running soon</p></body></html>",
			"Down Back & running soon"},
		{"html sniffed", "", "<h1>Service Unavailable</h1>", "Service Unavailable"},
		{"plain text", "text/plain", "Rate limit exceeded.\n  Please try again later.",
			"Rate limit exceeded. Please try again later."},
		{"tags in plain text kept", "text/plain", "a <b> c", "a <b> c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := textExcerpt(tc.contentType, []byte(tc.body)); got != tc.want {
				t.Errorf("textExcerpt = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTextExcerptTruncates(t *testing.T) {
	got := textExcerpt("text/plain", []byte(strings.Repeat("é", 500)))
	if n := len([]rune(got)); n != maxErrorMsgRunes {
		t.Errorf("excerpt has %d characters, want %d", n, maxErrorMsgRunes)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("excerpt %q does not mark the cut", got)
	}
}

func TestNewAPIError(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantCode    string
		wantMsg     string
	}{
		{"iterable json", 400, "application/json",
			`{"msg":"[/api/events/trackBulk] Invalid JSON body","code":"BadJsonBody",` +
				`"params":{"obj.events[0].createdAt":"Number value expected"}}`,
			"BadJsonBody", "[/api/events/trackBulk] Invalid JSON body"},
		{"gateway json", 502, "application/json", `{"message":"Bad Gateway"}`, "", "Bad Gateway"},
		{"json without known keys", 500, "application/json", `{"error":"boom"}`, "", `{"error":"boom"}`},
		{"success code on error", 400, "application/json", `{"msg":"odd","code":"Success"}`, "Success", "odd"},
		{"empty body", 504, "", "", "", "Gateway Timeout"},
		{"html", 503, "text/html", "<html><title>503 Service Unavailable</title></html>", "",
			"503 Service Unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			resp.Header.Set("Content-Type", tc.contentType)
			e := newAPIError(resp, []byte(tc.body), time.Now())
			if e.Code != tc.wantCode {
				t.Errorf("Code = %q, want %q", e.Code, tc.wantCode)
			}
			if e.Msg != tc.wantMsg {
				t.Errorf("Msg = %q, want %q", e.Msg, tc.wantMsg)
			}
			if e.Body != tc.body {
				t.Errorf("Body = %q, want the raw body", e.Body)
			}
		})
	}
}

func TestNewAPIErrorKeepsParamsAndTruncatesBody(t *testing.T) {
	body := `{"msg":"m","code":"BadJsonBody","params":{"k":"` + strings.Repeat("x", 2000) + `"}}`
	e := newAPIError(&http.Response{StatusCode: 400, Header: http.Header{}}, []byte(body), time.Now())
	if len(e.Params["k"].(string)) != 2000 {
		t.Errorf("Params lost data: %d bytes", len(e.Params["k"].(string)))
	}
	if len(e.Body) != maxErrorBodyBytes {
		t.Errorf("Body has %d bytes, want %d", len(e.Body), maxErrorBodyBytes)
	}
}

func TestAPIErrorClassification(t *testing.T) {
	cases := []struct {
		status       int
		temporary    bool
		unauthorized bool
	}{
		{400, false, false}, {401, false, true}, {403, false, true}, {408, true, false},
		{413, false, false}, {429, true, false}, {500, true, false}, {503, true, false},
	}
	for _, tc := range cases {
		e := &APIError{StatusCode: tc.status}
		if e.Temporary() != tc.temporary {
			t.Errorf("HTTP %d: Temporary() = %v, want %v", tc.status, e.Temporary(), tc.temporary)
		}
		if got := errors.Is(e, ErrUnauthorized); got != tc.unauthorized {
			t.Errorf("HTTP %d: errors.Is(ErrUnauthorized) = %v, want %v", tc.status, got, tc.unauthorized)
		}
	}
}

func TestNewClientValidates(t *testing.T) {
	const key = "secret-value"
	cases := []struct {
		name    string
		opts    ClientOptions
		setting string
	}{
		{"missing key", ClientOptions{}, "ITERABLE_API_KEY"},
		{"key with newline", ClientOptions{APIKey: key + "\n"}, "ITERABLE_API_KEY"},
		{"key with inner space", ClientOptions{APIKey: "secret value"}, "ITERABLE_API_KEY"},
		{"bad scheme", ClientOptions{APIKey: key, BaseURL: "ftp://api.iterable.com"}, "ITERABLE_BASE_URL"},
		{"no scheme", ClientOptions{APIKey: key, BaseURL: "api.iterable.com"}, "ITERABLE_BASE_URL"},
		{"unparsable", ClientOptions{APIKey: key, BaseURL: "http://[::1"}, "ITERABLE_BASE_URL"},
		{"missing host", ClientOptions{APIKey: key, BaseURL: "https://"}, "ITERABLE_BASE_URL"},
		{"query", ClientOptions{APIKey: key, BaseURL: "https://api.iterable.com?x=1"}, "ITERABLE_BASE_URL"},
		{"negative timeout", ClientOptions{APIKey: key, Timeout: -time.Second}, "Timeout"},
		{"negative rate", ClientOptions{APIKey: key, RequestsPerSecond: -1}, "RequestsPerSecond"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.opts)
			if err == nil {
				t.Fatal("NewClient returned nil error")
			}
			if !strings.Contains(err.Error(), tc.setting) {
				t.Errorf("error %q does not name %s", err, tc.setting)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q contains the API key", err)
			}
		})
	}
}

func TestNewClientDefaults(t *testing.T) {
	c, err := NewClient(ClientOptions{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "https://api.iterable.com/api/events/trackBulk" {
		t.Errorf("endpoint = %q", c.endpoint)
	}
	if c.timeout != DefaultTimeout || c.userAgent != DefaultUserAgent {
		t.Errorf("timeout %s user agent %q, want the defaults", c.timeout, c.userAgent)
	}
	if c.limiter.Limit() != DefaultRequestsPerSecond || c.limiter.Burst() != 1 {
		t.Errorf("limiter %v/s burst %d, want %v/s burst 1", c.limiter.Limit(), c.limiter.Burst(),
			DefaultRequestsPerSecond)
	}

	c, err = NewClient(ClientOptions{APIKey: "k", BaseURL: EUBaseURL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if c.endpoint != "https://api.eu.iterable.com/api/events/trackBulk" {
		t.Errorf("EU endpoint = %q", c.endpoint)
	}
}

func TestCheckBaseURL(t *testing.T) {
	for _, ok := range []string{USBaseURL, EUBaseURL + "/", "HTTPS://API.ITERABLE.COM", "https://api.iterable.com:443",
		"http://[::1]:18089/", "http://127.0.0.1:8089"} {
		if err := CheckBaseURL(ok); err != nil {
			t.Errorf("CheckBaseURL(%q) = %v, want nil", ok, err)
		}
	}
	cases := []struct {
		raw, want string
	}{
		{"https://api.iterable.com/api/events/trackBulk", "scheme and host only"},
		{"http://127.0.0.1:18089?", "scheme and host only"},
		{"http://127.0.0.1:99999", "65535"},
		{"http://:18089", "missing host"},
		{"http://::1:18089", "brackets"},
		{"ftp://api.iterable.com", "http or https"},
		{"https://user:hunter2@api.iterable.com:8x", "ITERABLE_BASE_URL"},
		{"https://user:hunter2@api.iterable.com/v1", "ITERABLE_BASE_URL"},
	}
	for _, c := range cases {
		err := CheckBaseURL(c.raw)
		if err == nil {
			t.Errorf("CheckBaseURL(%q) accepted it", c.raw)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckBaseURL(%q) = %q, want it to contain %q", c.raw, err, c.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("CheckBaseURL(%q) = %q, which shows the password", c.raw, err)
		}
	}
}
