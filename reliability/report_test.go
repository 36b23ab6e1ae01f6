package reliability

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/layover-dev/layover/internal/testenv"
)

// reportEnv names the file that the counts of every scenario are appended
// to, one JSON object per line.
const reportEnv = "LAYOVER_RELIABILITY_REPORT"

// row is the outcome of one scenario.
type row struct {
	Group        string         `json:"group"`
	Scenario     string         `json:"scenario"`
	Trials       int            `json:"trials"` // how often the fault happened
	Acked        int            `json:"batches_acknowledged"`
	BatchesLost  int            `json:"batches_lost"`
	Events       int            `json:"events_stored"`
	Delivered    int            `json:"events_delivered"` // distinct ids stored by Iterable
	Deliveries   int            `json:"deliveries"`       // times Iterable stored one of them
	Redelivered  int            `json:"redelivered_upserts"`
	Duplicated   int            `json:"duplicated_by_id"`
	Rejected     int            `json:"events_rejected"`
	Skipped      int            `json:"events_skipped"`
	Lost         int            `json:"events_lost"`
	DeadLettered int            `json:"dead_lettered"`
	Reasons      map[string]int `json:"rejection_reasons,omitempty"`
	Note         string         `json:"note,omitempty"`
}

var (
	rowsMu sync.Mutex
	rows   []row
)

// record logs r as a table line and keeps it for the report file.
func record(t testing.TB, r row) {
	t.Helper()
	t.Logf("%-10s %-52s trials=%d acked=%d batches_lost=%d events=%d delivered=%d deliveries=%d "+
		"redelivered=%d duplicated=%d rejected=%d skipped=%d lost=%d dead=%d reasons=%s note=%q",
		r.Group, r.Scenario, r.Trials, r.Acked, r.BatchesLost, r.Events, r.Delivered, r.Deliveries,
		r.Redelivered, r.Duplicated, r.Rejected, r.Skipped, r.Lost, r.DeadLettered, formatReasons(r.Reasons), r.Note)
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
}

// formatReasons lists rejection reasons and counts in a stable order.
func formatReasons(reasons map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(reasons)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, reasons[k]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestMain runs the tests, removes the layover binary they built, and
// appends the rows to the report file when reportEnv is set.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveCommands()
	if path := os.Getenv(reportEnv); path != "" {
		if err := appendReport(path, rows); err != nil {
			fmt.Fprintf(os.Stderr, "write %s: %v\n", reportEnv, err)
			code = 1
		}
	}
	os.Exit(code)
}

// appendReport appends rows to path as JSON lines in one write, so that
// test binaries of several packages can share the file.
func appendReport(path string, rows []row) error {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(buf.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
