package queue

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSettleRetention(t *testing.T) {
	hours := func(h int64) int64 { return h * time.Hour.Milliseconds() }
	cases := []struct {
		name          string
		follow        bool
		recorded      map[string]int64
		wantRecord    bool
		wantErr       bool
		wantRetention time.Duration
		wantDead      time.Duration
		wantLog       string
	}{
		{"server records its own", false, nil, true, false, 96 * time.Hour, 336 * time.Hour, ""},
		{"server replaces another record", false,
			map[string]int64{RecordedRetention: hours(720), RecordedDeadRetention: hours(1440)},
			true, false, 96 * time.Hour, 336 * time.Hour, "replacing the recorded retention"},
		{"follower adopts the record", true,
			map[string]int64{RecordedRetention: hours(720), RecordedDeadRetention: hours(1440)},
			false, false, 720 * time.Hour, 1440 * time.Hour, "recorded=720h0m0s"},
		{"follower without a record expires nothing", true, nil,
			false, false, noExpiry, noExpiry, "expires nothing"},
		{"follower with half a record expires nothing", true,
			map[string]int64{RecordedRetention: hours(720)},
			false, false, noExpiry, noExpiry, "expires nothing"},
		{"zero retention recorded", true,
			map[string]int64{RecordedRetention: 0, RecordedDeadRetention: hours(336)},
			false, true, 0, 0, ""},
		{"retention too large for a Duration", true,
			map[string]int64{RecordedRetention: 1 << 62, RecordedDeadRetention: 1 << 62},
			false, true, 0, 0, ""},
		{"dead retention shorter than retention", true,
			map[string]int64{RecordedRetention: hours(96), RecordedDeadRetention: -5},
			false, true, 0, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			o := Options{Retention: 96 * time.Hour, DeadRetention: 336 * time.Hour, FollowStoredRetention: c.follow}
			record, err := o.SettleRetention(c.recorded, slog.New(slog.NewTextHandler(&log, nil)))
			if (err != nil) != c.wantErr {
				t.Fatalf("error = %v, want error %v", err, c.wantErr)
			}
			if c.wantErr {
				return
			}
			if record != c.wantRecord {
				t.Errorf("record = %v, want %v", record, c.wantRecord)
			}
			if o.Retention != c.wantRetention || o.DeadRetention != c.wantDead {
				t.Errorf("retentions %s and %s, want %s and %s", o.Retention, o.DeadRetention, c.wantRetention, c.wantDead)
			}
			if c.wantLog != "" && !strings.Contains(log.String(), c.wantLog) {
				t.Errorf("log lacks %q:\n%s", c.wantLog, log.String())
			}
		})
	}
}
