package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue/sqlite"
)

// TestBadSettingsExitBeforeQueue runs serve and forward with settings that
// would break them, and checks that each exits with status 2, names the
// variable and its value, and does not create the data folder.
func TestBadSettingsExitBeforeQueue(t *testing.T) {
	tooLarge := strconv.Itoa(sqlite.MaxBodySize + 1)
	cases := []struct {
		name    string
		command string
		env     []string
		want    []string // each must appear in the output
		secret  string   // must not appear in the output
	}{
		{name: "schedule never fires", command: "serve",
			env:  []string{"LAYOVER_SCHEDULE=0 0 30 2 *"},
			want: []string{"LAYOVER_SCHEDULE", "0 0 30 2 *"}},
		{name: "schedule gap over default retention", command: "serve",
			env:  []string{"LAYOVER_SCHEDULE=@every 1000h"},
			want: []string{"LAYOVER_SCHEDULE", "@every 1000h", "LAYOVER_RETENTION", "96h"}},
		{name: "hourly schedule over short retention", command: "serve",
			env:  []string{"LAYOVER_SCHEDULE=@hourly", "LAYOVER_RETENTION=30m"},
			want: []string{"LAYOVER_SCHEDULE", "@hourly", "LAYOVER_RETENTION", "30m"}},
		{name: "CRON_TZ every zero", command: "serve",
			env:  []string{"LAYOVER_SCHEDULE=CRON_TZ=UTC @every 0s"},
			want: []string{"LAYOVER_SCHEDULE", "@every 0s", "at least 1s"}},
		{name: "TZ every negative", command: "serve",
			env:  []string{"LAYOVER_SCHEDULE=TZ=UTC @every -5m"},
			want: []string{"LAYOVER_SCHEDULE", "@every -5m", "at least 1s"}},
		{name: "rate NaN serve", command: "serve",
			env: []string{"LAYOVER_RATE=NaN"}, want: []string{"LAYOVER_RATE", "NaN"}},
		{name: "rate NaN forward", command: "forward",
			env: []string{"LAYOVER_RATE=NaN"}, want: []string{"LAYOVER_RATE", "NaN"}},
		{name: "rate infinite forward", command: "forward",
			env: []string{"LAYOVER_RATE=+Inf"}, want: []string{"LAYOVER_RATE", "Inf"}},
		{name: "rate too low forward", command: "forward",
			env: []string{"LAYOVER_RATE=0.001"}, want: []string{"LAYOVER_RATE", "0.001", "0.01"}},
		{name: "listen empty", command: "serve",
			env: []string{"LAYOVER_LISTEN="}, want: []string{"LAYOVER_LISTEN"}},
		{name: "retry budget zero forward", command: "forward",
			env: []string{"LAYOVER_RETRY_BUDGET=0s"}, want: []string{"LAYOVER_RETRY_BUDGET", "0s"}},
		{name: "retry budget negative serve", command: "serve",
			env: []string{"LAYOVER_RETRY_BUDGET=-1m"}, want: []string{"LAYOVER_RETRY_BUDGET", "-1m0s"}},
		{name: "read timeout too short", command: "serve",
			env: []string{"LAYOVER_READ_TIMEOUT=500ms"}, want: []string{"LAYOVER_READ_TIMEOUT", "500ms"}},
		{name: "read timeout too long", command: "serve",
			env: []string{"LAYOVER_READ_TIMEOUT=2h"}, want: []string{"LAYOVER_READ_TIMEOUT", "2h0m0s"}},
		{name: "read timeout enormous", command: "serve",
			env:  []string{"LAYOVER_READ_TIMEOUT=2562047h"},
			want: []string{"LAYOVER_READ_TIMEOUT", "2562047h0m0s"}},
		{name: "body size over sqlite limit", command: "serve",
			env:  []string{"LAYOVER_MAX_BODY_BYTES=" + tooLarge},
			want: []string{"LAYOVER_MAX_BODY_BYTES", tooLarge, strconv.Itoa(sqlite.MaxBodySize)}},
		{name: "body size over limit on postgres", command: "serve",
			env: []string{"LAYOVER_MAX_BODY_BYTES=" + tooLarge,
				"LAYOVER_QUEUE=postgres://layover@127.0.0.1:1/layover"},
			want: []string{"LAYOVER_MAX_BODY_BYTES", tooLarge, strconv.Itoa(sqlite.MaxBodySize)}},
		{name: "iterable key whitespace forward", command: "forward",
			env: []string{"ITERABLE_API_KEY=  \t "}, want: []string{"ITERABLE_API_KEY"}},
		{name: "iterable key whitespace serve", command: "serve",
			env:  []string{"ITERABLE_API_KEY=   ", "LAYOVER_SCHEDULE=@hourly"},
			want: []string{"ITERABLE_API_KEY"}},
		{name: "iterable key padded forward", command: "forward",
			env: []string{"ITERABLE_API_KEY= padded-key"}, want: []string{"ITERABLE_API_KEY"},
			secret: "padded-key"},
		{name: "base URL with trackBulk path forward", command: "forward",
			env:  []string{"ITERABLE_BASE_URL=https://api.iterable.com/api/events/trackBulk"},
			want: []string{"ITERABLE_BASE_URL", "/api/events/trackBulk", "https://api.iterable.com"}},
		{name: "base URL with path serve", command: "serve",
			env:  []string{"ITERABLE_BASE_URL=https://api.iterable.com/v1"},
			want: []string{"ITERABLE_BASE_URL", "https://api.iterable.com/v1"}},
		{name: "base URL with password", command: "forward",
			env:    []string{"ITERABLE_BASE_URL=https://user:hunter2@api.iterable.com"},
			want:   []string{"ITERABLE_BASE_URL", "api.iterable.com"},
			secret: "hunter2"},
		{name: "retention too short for the schedule check", command: "serve",
			env:  []string{"LAYOVER_RETENTION=30s"},
			want: []string{"invalid retention 30s", "LAYOVER_RETENTION"}},
		{name: "base URL with empty query", command: "forward",
			env:  []string{"ITERABLE_BASE_URL=http://127.0.0.1:18089?"},
			want: []string{"ITERABLE_BASE_URL", "scheme and host only"}},
		{name: "base URL port out of range", command: "forward",
			env:  []string{"ITERABLE_BASE_URL=http://127.0.0.1:99999"},
			want: []string{"ITERABLE_BASE_URL", "99999", "65535"}},
		{name: "base URL without host", command: "forward",
			env:  []string{"ITERABLE_BASE_URL=http://:18089"},
			want: []string{"ITERABLE_BASE_URL", "http://:18089"}},
		{name: "base URL IPv6 without brackets", command: "forward",
			env:  []string{"ITERABLE_BASE_URL=http://::1:18089"},
			want: []string{"ITERABLE_BASE_URL", "brackets"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			// A loopback port 0 keeps a serve that wrongly starts off the
			// default port until runLayoverWithin kills it.
			extra := append([]string{"LAYOVER_LISTEN=127.0.0.1:0"}, tc.env...)
			code, out := runLayoverWithin(t, 15*time.Second, testEnv(dir, "http://127.0.0.1:1", extra...), tc.command)
			if code != exitUsage {
				t.Errorf("layover %s exited with %d, want %d\n%s", tc.command, code, exitUsage, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
			if tc.secret != "" && strings.Contains(out, tc.secret) {
				t.Errorf("output shows the secret %q:\n%s", tc.secret, out)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("layover %s created the data folder (stat error: %v)", tc.command, err)
			}
		})
	}
}

func TestScheduleGapsWithinRetention(t *testing.T) {
	cases := []struct {
		spec      string
		retention time.Duration
	}{
		{"@every 96h", 97 * time.Hour},
		{"@hourly", 2 * time.Hour},
		{"CRON_TZ=UTC 0 0 * * *", 25 * time.Hour},
		{"CRON_TZ=UTC 0 9 * * 1-5", 73 * time.Hour},
		{"@every 10s", time.Minute},
	}
	now := time.Now()
	for _, tc := range cases {
		s, err := parseSchedule(tc.spec)
		if err != nil {
			t.Fatalf("parseSchedule(%q): %v", tc.spec, err)
		}
		if err := checkScheduleGaps(s, tc.spec, tc.retention, now); err != nil {
			t.Errorf("checkScheduleGaps(%q, %s): %v", tc.spec, tc.retention, err)
		}
	}
}

func TestScheduleGapsNotShorterThanRetention(t *testing.T) {
	// In 2027, Berlin leaves daylight saving time on 31 October, so a
	// midnight run in Berlin is 25h after the one before. Days 1 to 7 of
	// each month leave 24 days from 7 December to 1 January.
	now := time.Date(2027, time.January, 10, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		spec      string
		retention time.Duration
		gap       string
	}{
		{"@every 96h", 96 * time.Hour, "96h0m0s"},
		{"CRON_TZ=Europe/Berlin 0 0 * * *", 24*time.Hour + 30*time.Minute, "25h0m0s"},
		{"CRON_TZ=UTC */5 * 1-7 * *", 96 * time.Hour, "576h"},
		// Every minute from January to March: more runs than are
		// followed one by one, then a pause of nine months.
		{"CRON_TZ=UTC * * * 1-3 *", 96 * time.Hour, "between forward runs"},
	}
	for _, tc := range cases {
		s, err := parseSchedule(tc.spec)
		if err != nil {
			t.Fatalf("parseSchedule(%q): %v", tc.spec, err)
		}
		err = checkScheduleGaps(s, tc.spec, tc.retention, now)
		if err == nil {
			t.Errorf("checkScheduleGaps(%q, %s) accepted a gap of %s", tc.spec, tc.retention, tc.gap)
			continue
		}
		if !strings.Contains(err.Error(), tc.gap) {
			t.Errorf("checkScheduleGaps(%q) error %q does not name the %s gap", tc.spec, err, tc.gap)
		}
	}
}

func TestScheduleGapsOverRetention(t *testing.T) {
	// Weekdays at 09:00 leave 72h from Friday to Monday, which 8 runs
	// always include.
	s, err := parseSchedule("CRON_TZ=UTC 0 9 * * 1-5")
	if err != nil {
		t.Fatal(err)
	}
	err = checkScheduleGaps(s, "CRON_TZ=UTC 0 9 * * 1-5", 71*time.Hour, time.Now())
	if err == nil {
		t.Fatal("weekday schedule accepted with a 71h retention")
	}
	if !strings.Contains(err.Error(), "72h0m0s") {
		t.Errorf("error %q does not name the 72h gap", err)
	}
}

func TestParseScheduleRejectsPrefixedEvery(t *testing.T) {
	for _, spec := range []string{"CRON_TZ=UTC @every 0s", "TZ=UTC @every -5m", "TZ=UTC  @every  500ms"} {
		if _, err := parseSchedule(spec); err == nil {
			t.Errorf("parseSchedule(%q) accepted an interval under 1s", spec)
		}
	}
	if _, err := parseSchedule("CRON_TZ=UTC @every 1s"); err != nil {
		t.Errorf(`parseSchedule("CRON_TZ=UTC @every 1s"): %v`, err)
	}
}

// TestServeKeepsRunningOnSIGHUP checks that SIGHUP does not end a serve
// that has no key file and no TLS certificate to reload.
func TestServeKeepsRunningOnSIGHUP(t *testing.T) {
	serve := startServe(t, testEnv(t.TempDir(), "http://127.0.0.1:1"))
	if err := serve.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("send SIGHUP: %v", err)
	}
	const line = "SIGHUP received: nothing to reload"
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(serve.log.String(), line) && time.Now().Before(deadline) {
		select {
		case err := <-serve.done:
			serve.done <- err
			t.Fatalf("serve exited on SIGHUP: %v\n%s", err, serve.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(serve.log.String(), line) {
		t.Errorf("serve did not log %q within 5s\n%s", line, serve.log.String())
	}
	resp, err := http.Get(serve.base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz after SIGHUP: %v\n%s", err, serve.log.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz after SIGHUP: status %d, want 200", resp.StatusCode)
	}
	serve.stop(t)
}

func TestServeBusyPortBeforeQueue(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	env := testEnv(dir, "http://127.0.0.1:1", "LAYOVER_LISTEN="+busy.Addr().String())

	code, out := runLayoverWithin(t, 15*time.Second, env, "serve")
	if code != exitUsage || !strings.Contains(out, "LAYOVER_LISTEN") {
		t.Errorf("serve on a busy port: exit %d, want %d naming LAYOVER_LISTEN\n%s", code, exitUsage, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve on a busy port created the data folder: stat error %v", err)
	}
}
