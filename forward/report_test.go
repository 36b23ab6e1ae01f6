package forward

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// A report logged through a JSON handler carries each count as a number
// field of its own.
func TestReportLogsCountsAsNumbers(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	report := Report{Received: 10, Deleted: 9, Empty: 1, Delivered: 80, Retries: 2}
	logger.Info("forward run finished", report.LogAttrs()...)

	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", out.String(), err)
	}
	want := map[string]float64{
		"received": 10, "deleted": 9, "empty": 1, "released": 0, "poison": 0,
		"delivered": 80, "skipped": 0, "rejected": 0, "requests": 0, "retries": 2,
	}
	for key, n := range want {
		if got, ok := line[key].(float64); !ok || got != n {
			t.Errorf("%s = %v, want %v", key, line[key], n)
		}
	}
}
