package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAllowedNetworksRejectOthers runs serve with an allow-list that does
// not contain the loopback address: a batch with the right key gets 403
// and is not stored, while GET /healthz still returns 200.
func TestAllowedNetworksRejectOthers(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	serve := startServe(t, testEnv(dir, simURL, "LAYOVER_ALLOWED_NETWORKS=192.0.2.0/24, 2001:db8::/32"))

	resp, err := hostileRequest{header: bearer(), body: []byte(`{"events":[]}`)}.send(serve.base)
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != http.StatusForbidden {
		t.Errorf("POST from 127.0.0.1: HTTP %d, want 403", resp.status)
	}
	if !strings.Contains(resp.body, "127.0.0.1") {
		t.Errorf("403 body %s does not name the client address", resp.body)
	}
	checkHealthy(t, serve.base, "a rejected address")
	serve.stop(t)
	if stored := storedBodies(t, dir); len(stored) != 0 {
		t.Errorf("queue has %d messages, want 0", len(stored))
	}
}

// TestTrustedProxyForwardedFor runs serve behind a trusted proxy on
// 127.0.0.1: the right-most X-Forwarded-For address that is not a trusted
// proxy decides, so a forged entry on the left cannot pass the allow-list.
func TestTrustedProxyForwardedFor(t *testing.T) {
	_, simURL := startSimulator(t)
	dir := t.TempDir()
	serve := startServe(t, testEnv(dir, simURL,
		"LAYOVER_ALLOWED_NETWORKS=192.0.2.0/24", "LAYOVER_TRUSTED_PROXIES=127.0.0.1/32, 10.0.0.0/8"))

	tests := []struct {
		xff  string
		want int
	}{
		{"192.0.2.10", http.StatusOK},
		{"192.0.2.10, 10.1.1.1", http.StatusOK},
		{"198.51.100.1, 192.0.2.10", http.StatusOK},
		{"198.51.100.1", http.StatusForbidden},
		{"192.0.2.10, 198.51.100.1", http.StatusForbidden},
		{"not-an-address", http.StatusForbidden},
		{"", http.StatusForbidden},
	}
	accepted := 0
	for _, tt := range tests {
		header := bearer()
		if tt.xff != "" {
			header = append(header, "X-Forwarded-For", tt.xff)
		}
		resp, err := hostileRequest{header: header, body: []byte(`{"events":[]}`)}.send(serve.base)
		if err != nil {
			t.Fatal(err)
		}
		if resp.status != tt.want {
			t.Errorf("X-Forwarded-For %q: HTTP %d %s, want %d", tt.xff, resp.status, resp.body, tt.want)
		}
		if resp.status == http.StatusOK {
			accepted++
		}
	}
	serve.stop(t)
	if stored := storedBodies(t, dir); len(stored) != accepted {
		t.Errorf("queue has %d messages, want %d", len(stored), accepted)
	}
}

// TestInvalidNetworkSetting checks that serve rejects a malformed CIDR at
// start with the usage exit status and names the variable.
func TestInvalidNetworkSetting(t *testing.T) {
	_, simURL := startSimulator(t)
	for _, setting := range []string{"LAYOVER_ALLOWED_NETWORKS=10.0.0.0/33", "LAYOVER_TRUSTED_PROXIES=proxy.local"} {
		code, out := runLayover(t, testEnv(t.TempDir(), simURL, setting, "LAYOVER_LISTEN=127.0.0.1:0"), "serve")
		name, _, _ := strings.Cut(setting, "=")
		if code != exitUsage || !strings.Contains(out, name) {
			t.Errorf("%s: exit %d, output %q; want exit %d naming %s", setting, code, out, exitUsage, name)
		}
	}
}
