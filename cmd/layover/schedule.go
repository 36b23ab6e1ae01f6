package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/layover-dev/layover/forward"
)

// checkScheduleGaps looks a year ahead, which covers monthly patterns and
// the changes to and from daylight saving time. It follows the runs one by
// one up to maxScheduleRuns. For the rest of the year it probes the wait
// for the next run every scheduleProbe, so that a busy schedule with a long
// pause is still found. A schedule of every minute takes about 130 ms.
const (
	scheduleHorizon = 366 * 24 * time.Hour
	maxScheduleRuns = 100_000
	scheduleProbe   = 10 * time.Minute
)

// parseSchedule parses LAYOVER_SCHEDULE; "off" returns nil. It rejects an
// "@every" interval under 1s and a schedule that never fires.
func parseSchedule(spec string) (cron.Schedule, error) {
	if strings.EqualFold(strings.TrimSpace(spec), "off") {
		return nil, nil
	}
	// cron accepts "@every 0s" and negative intervals and then runs every
	// second.
	if d, ok := everyInterval(spec); ok && d < time.Second {
		return nil, usagef(`invalid schedule %q (LAYOVER_SCHEDULE): the interval must be at least 1s, such as "@every 15m"`, spec)
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, usagef(`invalid schedule %q (LAYOVER_SCHEDULE): %v; expected a cron expression such as "0 * * * *", "@hourly", "@every 15m" or "off"`, spec, err)
	}
	// cron gives up after five years and returns the zero time for a date
	// that does not exist, such as 30 February.
	if s.Next(time.Now()).IsZero() {
		return nil, usagef(`invalid schedule %q (LAYOVER_SCHEDULE): it never fires; expected a cron expression with a date that exists, such as "0 * * * *", or "off"`, spec)
	}
	return s, nil
}

// everyInterval returns the interval of an "@every" schedule. cron accepts
// a CRON_TZ= or TZ= field before the descriptor, so it skips those first.
func everyInterval(spec string) (time.Duration, bool) {
	fields := strings.Fields(spec)
	for len(fields) > 0 && (strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ=")) {
		fields = fields[1:]
	}
	if len(fields) < 2 || fields[0] != "@every" {
		return 0, false
	}
	d, err := time.ParseDuration(strings.Join(fields[1:], " "))
	return d, err == nil
}

// checkScheduleGaps rejects a schedule that leaves as much time as the
// retention between runs after now, because the queue would drop the
// batches stored after one run before the next run could forward them. It
// measures the wait for the first run too.
func checkScheduleGaps(s cron.Schedule, spec string, retention time.Duration, now time.Time) error {
	var longest time.Duration
	prev, runs := now, 0
	for ; runs < maxScheduleRuns && prev.Sub(now) <= scheduleHorizon; runs++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		prev = next
	}
	if runs == maxScheduleRuns {
		for t := prev; t.Sub(now) <= scheduleHorizon; t = t.Add(scheduleProbe) {
			next := s.Next(t)
			if next.IsZero() {
				break
			}
			wait := next.Sub(t)
			if wait >= scheduleProbe {
				wait += scheduleProbe // the run before t may be up to a probe earlier
			}
			longest = max(longest, wait)
		}
	}
	if longest >= retention {
		// A whole hour above the gap leaves a run time to reach every batch.
		enough := longest.Truncate(time.Hour) + time.Hour
		return usagef("schedule %q (LAYOVER_SCHEDULE) leaves up to %s between forward runs, as long as or longer than "+
			"the retention %s (LAYOVER_RETENTION), so stored batches would expire before a run forwards them: "+
			"schedule runs more often or raise LAYOVER_RETENTION to %s or more", spec, longest.Round(time.Second),
			retention, enough)
	}
	return nil
}

// scheduler runs the forwarder on a schedule, never two runs at once.
type scheduler struct {
	cron *cron.Cron
	mu   sync.Mutex // held during a run
}

func startSchedule(ctx context.Context, s cron.Schedule, fwd *forward.Forwarder,
	lock func(context.Context) (func(), bool, error), metrics *forwardMetrics, log *slog.Logger) *scheduler {
	sc := &scheduler{cron: cron.New()}
	if s == nil || fwd == nil {
		log.Info("forwarding is off (LAYOVER_SCHEDULE=off): run layover forward to drain the queue, " +
			"which on the embedded queue works only while serve is stopped")
		return sc
	}
	log = log.With("component", "schedule")
	sc.cron.Schedule(s, cron.FuncJob(func() {
		if !sc.mu.TryLock() {
			log.Warn("previous forward run is still going; skipping this one")
			return
		}
		defer sc.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if lock != nil {
			unlock, ok, err := lock(ctx)
			if err != nil {
				log.Error("taking the forwarder lock failed; skipping this run", "error", err)
				return
			}
			if !ok {
				log.Info("another layover process is forwarding from this queue; skipping this run")
				return
			}
			defer unlock()
		}
		log.Info("forward run starting")
		started := time.Now()
		// The log line below carries the report, so the plain summary that
		// layover forward prints would only repeat it outside the log format.
		report, err := forwardOnce(ctx, fwd, io.Discard)
		metrics.observe(report, err)
		attrs := append(report.LogAttrs(), "duration_ms", time.Since(started).Milliseconds())
		if err != nil {
			log.Error("forward run failed", append(attrs, "error", err)...)
			return
		}
		log.Info("forward run finished", attrs...)
	}))
	sc.cron.Start()
	log.Info("forward schedule started", "next_run", s.Next(time.Now()).Format(time.RFC3339))
	return sc
}

// stop stops the schedule and waits for a running forward run to end.
func (sc *scheduler) stop() {
	<-sc.cron.Stop().Done()
}
