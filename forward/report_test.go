package forward

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// A report logged through a JSON handler carries each count as a number.
func TestReportLogsCountsAsNumbers(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	logger.Info("forward run finished", "report", Report{Received: 10, Deleted: 9, Delivered: 80, Retries: 2})

	var line struct {
		Report map[string]any `json:"report"`
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", out.String(), err)
	}
	want := map[string]float64{"received": 10, "deleted": 9, "delivered": 80, "retries": 2, "poison": 0}
	for key, n := range want {
		if got, ok := line.Report[key].(float64); !ok || got != n {
			t.Errorf("report.%s = %v, want %v", key, line.Report[key], n)
		}
	}
	if len(line.Report) != 10 {
		t.Errorf("report has %d fields, want 10: %v", len(line.Report), line.Report)
	}
}
