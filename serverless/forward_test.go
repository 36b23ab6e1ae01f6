package serverless

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunLimits(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		timeout     time.Duration
		retryBudget time.Duration
		stop        time.Duration // from now
		maxRunTime  time.Duration
	}{
		// 900s - 65s cleanup = 835s; 835s - (120s + 6 x 30s) = 535s.
		{"15 minutes", 15 * time.Minute, 2 * time.Minute, 835 * time.Second, 535 * time.Second},
		// 300s - 65s = 235s; the last request needs 300s, so half of 235s.
		{"5 minutes", 5 * time.Minute, 2 * time.Minute, 235 * time.Second, 117500 * time.Millisecond},
		// 120s: cleanup is capped at a quarter, 30s.
		{"2 minutes", 2 * time.Minute, 10 * time.Second, 90 * time.Second, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stop, maxRunTime := runLimits(now, now.Add(tt.timeout), tt.retryBudget)
			if got := stop.Sub(now); got != tt.stop {
				t.Errorf("stop = now + %s, want now + %s", got, tt.stop)
			}
			if maxRunTime != tt.maxRunTime {
				t.Errorf("maxRunTime = %s, want %s", maxRunTime, tt.maxRunTime)
			}
			if maxRunTime >= stop.Sub(now) {
				t.Errorf("maxRunTime %s does not end before stop %s", maxRunTime, stop.Sub(now))
			}
		})
	}
}

func TestNewForwarderMappingFile(t *testing.T) {
	cfg := ForwardConfig{MappingFile: filepath.Join(t.TempDir(), "missing.json")}
	_, err := NewForwarder(cfg, NewSecretReader(emptyAWSConfig()), slog.New(slog.DiscardHandler), "test")
	if err == nil || !strings.Contains(err.Error(), EnvMapping) {
		t.Errorf("NewForwarder with a missing mapping file: error = %v, want one naming %s", err, EnvMapping)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.MappingFile = bad
	if _, err := NewForwarder(cfg, NewSecretReader(emptyAWSConfig()), slog.New(slog.DiscardHandler), "test"); err == nil {
		t.Error("NewForwarder accepted a mapping file that is not JSON")
	}
}
