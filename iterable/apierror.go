package iterable

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of what an APIError keeps from a response body.
const (
	maxErrorBodyBytes = 1024
	maxErrorMsgRunes  = 200
)

// newAPIError builds the error for a non-200 response with body data. now
// is the reference time for a Retry-After given as an HTTP date.
func newAPIError(resp *http.Response, data []byte, now time.Time) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now),
		Body:       truncateUTF8(string(data), maxErrorBodyBytes),
	}
	if !decodeErrorJSON(data, e) {
		e.Msg = textExcerpt(resp.Header.Get("Content-Type"), data)
	}
	if e.Msg == "" && e.Code == "" {
		e.Msg = http.StatusText(resp.StatusCode)
	}
	return e
}

// decodeErrorJSON fills e from Iterable's {msg, code, params} body, or from
// the {"message": …} body that gateways in front of Iterable send. It
// reports whether data was such a JSON object.
func decodeErrorJSON(data []byte, e *APIError) bool {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return false
	}
	var body struct {
		Msg     string         `json:"msg"`
		Code    string         `json:"code"`
		Params  map[string]any `json:"params"`
		Message string         `json:"message"`
	}
	if err := json.Unmarshal(trimmed, &body); err != nil {
		return false
	}
	e.Code = body.Code
	e.Msg = body.Msg
	e.Params = body.Params
	if e.Msg == "" {
		e.Msg = body.Message
	}
	return e.Msg != "" || e.Code != ""
}

// textExcerpt returns a short readable line from a plain-text or HTML body:
// the <title> of an HTML page when it has one, else its text without tags.
func textExcerpt(contentType string, data []byte) string {
	text := string(data)
	isHTML := strings.Contains(strings.ToLower(contentType), "html") ||
		strings.HasPrefix(strings.TrimSpace(text), "<")
	if isHTML {
		if title := htmlTitle(text); title != "" {
			text = title
		} else {
			text = stripTags(text)
		}
		text = html.UnescapeString(text)
	}
	text = strings.Join(strings.Fields(text), " ")
	return truncateRunes(text, maxErrorMsgRunes)
}

// htmlTitle returns the content of the first <title> element, or "".
func htmlTitle(page string) string {
	lower := strings.ToLower(page)
	start := strings.Index(lower, "<title")
	if start < 0 {
		return ""
	}
	open := strings.IndexByte(lower[start:], '>')
	if open < 0 {
		return ""
	}
	contentStart := start + open + 1
	end := strings.Index(lower[contentStart:], "</title")
	if end < 0 {
		return ""
	}
	return strings.TrimSpace(page[contentStart : contentStart+end])
}

// stripTags removes tags and the content of script and style elements.
func stripTags(page string) string {
	for _, element := range []string{"script", "style"} {
		page = removeElement(page, element)
	}
	var b strings.Builder
	inTag := false
	for _, r := range page {
		switch {
		case r == '<':
			inTag = true
		case r == '>' && inTag:
			inTag = false
			b.WriteByte(' ')
		case !inTag:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// removeElement cuts every <name …>…</name> span out of page.
func removeElement(page, name string) string {
	for {
		lower := strings.ToLower(page)
		start := strings.Index(lower, "<"+name)
		if start < 0 {
			return page
		}
		end := strings.Index(lower[start:], "</"+name+">")
		if end < 0 {
			return page[:start]
		}
		page = page[:start] + " " + page[start+end+len(name)+3:]
	}
}

// parseRetryAfter reads a Retry-After header given as delay seconds or as
// an HTTP date. It returns 0 when the header is absent, invalid or past.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		// Cap far-off values so the multiplication cannot overflow.
		if seconds <= 0 {
			return 0
		}
		seconds = min(seconds, int64(24*time.Hour/time.Second))
		return time.Duration(seconds) * time.Second
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	return max(at.Sub(now), 0)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// truncateRunes cuts s to at most n characters, marking the cut with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
