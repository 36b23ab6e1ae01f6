package iterabletest

import (
	"net/http"
	"strings"
	"testing"
)

func TestDiscardEventsKeepsNone(t *testing.T) {
	sim, url := startTest(t, Options{DiscardEvents: true})
	status, data, _ := postRaw(t, url, "Api-Key", DefaultAPIKey, oneEvent)
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200", status)
	}
	if !strings.Contains(string(data), `"successCount":1`) {
		t.Errorf("response %s, want successCount 1", data)
	}
	if got := sim.EventCount(DefaultAPIKey); got != 0 {
		t.Errorf("EventCount = %d, want 0 with DiscardEvents", got)
	}
	if got := sim.Stats().ByStatus[200]; got != 1 {
		t.Errorf("Stats.ByStatus[200] = %d, want 1", got)
	}
}
