package iterabletest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startTest mounts a simulator in an httptest server and returns both.
func startTest(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	sim := New(opts)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	// Cleanups run last-in first-out, so hung handlers are released
	// before httptest waits for them.
	t.Cleanup(func() { sim.Close() })
	return sim, ts.URL
}

// postRaw sends body to trackBulk with the given header and returns the
// status and body.
func postRaw(t testing.TB, baseURL, header, key, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, baseURL+"/api/events/trackBulk", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header[header] = []string{key}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post trackBulk: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, data, resp.Header
}

// postEvents sends events with the Api-Key header and decodes the JSON
// response into a generic map.
func postEvents(t testing.TB, baseURL, key string, events ...map[string]any) (int, map[string]any) {
	t.Helper()
	if events == nil {
		events = []map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"events": events})
	if err != nil {
		t.Fatal(err)
	}
	status, data, _ := postRaw(t, baseURL, "Api-Key", key, string(body))
	return status, decodeObject(t, data)
}

// decodeObject decodes a JSON object, failing the test otherwise.
func decodeObject(t testing.TB, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode response %q: %v", data, err)
	}
	return out
}

// listOf returns the string list at path (keys separated by dots).
func listOf(t testing.TB, body map[string]any, path string) []string {
	t.Helper()
	var current any = body
	for _, key := range strings.Split(path, ".") {
		object, ok := current.(map[string]any)
		if !ok {
			t.Fatalf("%s: %v is not an object", path, current)
		}
		current, ok = object[key]
		if !ok {
			t.Fatalf("%s: key %q missing in %v", path, key, object)
		}
	}
	raw, ok := current.([]any)
	if !ok {
		t.Fatalf("%s: %v is not a list", path, current)
	}
	out := make([]string, len(raw))
	for i, v := range raw {
		out[i], _ = v.(string)
	}
	return out
}

// counts returns successCount and failCount of a 200 body.
func counts(t testing.TB, body map[string]any) (success, fail string) {
	t.Helper()
	s, _ := body["successCount"].(json.Number)
	f, _ := body["failCount"].(json.Number)
	return s.String(), f.String()
}

func event(fields ...any) map[string]any {
	e := make(map[string]any)
	for i := 0; i+1 < len(fields); i += 2 {
		e[fields[i].(string)] = fields[i+1]
	}
	return e
}

func TestAuthAcceptsBothHeaderSpellings(t *testing.T) {
	_, url := startTest(t, Options{})
	body := `{"events":[{"eventName":"open","userId":"u1"}]}`
	for _, header := range []string{"Api-Key", "Api_Key", "api_key"} {
		status, data, _ := postRaw(t, url, header, DefaultAPIKey, body)
		if status != http.StatusOK {
			t.Errorf("header %s: status %d, body %s", header, status, data)
		}
	}
}

func TestAuthRejectsBadKey(t *testing.T) {
	_, url := startTest(t, Options{})
	for name, key := range map[string]string{"missing": "", "wrong": "nope"} {
		header := "Api-Key"
		if key == "" {
			header = ""
		}
		status, data, _ := postRaw(t, url, header, key, `{"events":[]}`)
		if status != http.StatusUnauthorized {
			t.Fatalf("%s key: status %d, want 401", name, status)
		}
		body := decodeObject(t, data)
		if body["code"] != "BadApiKey" || body["msg"] != "Invalid API key" {
			t.Errorf("%s key: body %v", name, body)
		}
		params, _ := body["params"].(map[string]any)
		if params["ip"] != "127.0.0.1" {
			t.Errorf("%s key: params.ip = %v, want 127.0.0.1", name, params["ip"])
		}
		if params["endpoint"] != "/api/events/trackBulk" {
			t.Errorf("%s key: params.endpoint = %v", name, params["endpoint"])
		}
	}
}

func TestRevokeKeyRejectsLaterRequests(t *testing.T) {
	sim, url := startTest(t, Options{})
	if status, _ := postEvents(t, url, DefaultAPIKey, event("eventName", "a", "userId", "u")); status != 200 {
		t.Fatalf("before revoke: status %d", status)
	}
	if err := sim.RevokeKey(DefaultAPIKey); err != nil {
		t.Fatal(err)
	}
	status, body := postEvents(t, url, DefaultAPIKey, event("eventName", "a", "userId", "u"))
	if status != http.StatusUnauthorized {
		t.Fatalf("after revoke: status %d, want 401", status)
	}
	if body["code"] != "BadApiKey" {
		t.Errorf("code = %v, want BadApiKey", body["code"])
	}
	params, _ := body["params"].(map[string]any)
	if id, _ := params["apiKeyIdentifier"].(string); id == "" || strings.Contains(DefaultAPIKey, id) {
		t.Errorf("apiKeyIdentifier = %q, want a non-empty value that does not reveal the key", id)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 1 {
		t.Errorf("EventCount after revoke = %d, want 1", got)
	}
	if err := sim.RevokeKey("unknown"); err == nil {
		t.Error("RevokeKey(unknown) returned nil, want an error")
	}
}

func TestProjectsAreSeparate(t *testing.T) {
	sim, url := startTest(t, Options{Projects: []Project{{APIKey: "k1"}, {APIKey: "k2"}}})
	postEvents(t, url, "k1", event("eventName", "a", "userId", "u"))
	postEvents(t, url, "k2", event("eventName", "a", "userId", "u"), event("eventName", "b", "userId", "u"))
	if got := sim.EventCount("k1"); got != 1 {
		t.Errorf("EventCount(k1) = %d, want 1", got)
	}
	if got := sim.EventCount("k2"); got != 2 {
		t.Errorf("EventCount(k2) = %d, want 2", got)
	}
}

func TestAddProjectValidates(t *testing.T) {
	sim := New(Options{})
	if err := sim.AddProject(Project{}); err == nil {
		t.Error("empty key: got nil error")
	}
	if err := sim.AddProject(Project{APIKey: DefaultAPIKey}); err == nil {
		t.Error("duplicate key: got nil error")
	}
	if err := sim.AddProject(Project{APIKey: "x", Type: "phone"}); err == nil {
		t.Error("unknown type: got nil error")
	}
}

func TestUnknownPathIsNotFound(t *testing.T) {
	_, url := startTest(t, Options{})
	resp, err := http.Post(url+"/api/users/update", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

func TestStartServesOnLoopback(t *testing.T) {
	sim := New(Options{})
	baseURL, err := sim.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if !strings.HasPrefix(baseURL, "http://127.0.0.1:") {
		t.Errorf("base URL %q, want http://127.0.0.1:port", baseURL)
	}
	status, data, _ := postRaw(t, baseURL, "Api-Key", DefaultAPIKey,
		`{"events":[{"eventName":"a","userId":"u"}]}`)
	if status != http.StatusOK {
		t.Errorf("status %d, body %s", status, data)
	}
	if _, err := sim.Start(""); err == nil {
		t.Error("second Start returned nil, want an error")
	}
}

func TestStartRejectsNonLoopback(t *testing.T) {
	sim := New(Options{})
	defer sim.Close()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "nonsense"} {
		if _, err := sim.Start(addr); err == nil {
			t.Errorf("Start(%q) returned nil, want an error", addr)
		}
	}
}

func TestCloseStopsServingAndIsIdempotent(t *testing.T) {
	sim := New(Options{})
	baseURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sim.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/api/events/trackBulk", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request after Close succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request after Close hung instead of failing: %v", err)
	}
}
