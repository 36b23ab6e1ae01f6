package main

import (
	"strings"
	"testing"
)

func TestParseScheduleAcceptsForms(t *testing.T) {
	for _, spec := range []string{"@hourly", "@every 15m", "@every 1s", "0 * * * *", "*/5 * * * *"} {
		s, err := parseSchedule(spec)
		if err != nil {
			t.Errorf("parseSchedule(%q): %v", spec, err)
		}
		if s == nil {
			t.Errorf("parseSchedule(%q) returned no schedule", spec)
		}
	}
	if s, err := parseSchedule("off"); err != nil || s != nil {
		t.Errorf(`parseSchedule("off") = %v, %v; want no schedule and no error`, s, err)
	}
}

func TestParseScheduleRejectsInvalid(t *testing.T) {
	for _, spec := range []string{"@every 0s", "@every -1m", "@every 500ms", "hourly", "61 * * * *", ""} {
		_, err := parseSchedule(spec)
		if err == nil {
			t.Errorf("parseSchedule(%q) accepted an invalid schedule", spec)
			continue
		}
		if !strings.Contains(err.Error(), "LAYOVER_SCHEDULE") {
			t.Errorf("parseSchedule(%q) error %q does not name LAYOVER_SCHEDULE", spec, err)
		}
	}
}
