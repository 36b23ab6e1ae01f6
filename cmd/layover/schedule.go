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

// parseSchedule parses LAYOVER_SCHEDULE; "off" returns nil.
func parseSchedule(spec string) (cron.Schedule, error) {
	if strings.EqualFold(strings.TrimSpace(spec), "off") {
		return nil, nil
	}
	if every, ok := strings.CutPrefix(strings.TrimSpace(spec), "@every "); ok {
		// cron accepts "@every 0s" and negative intervals and then runs
		// every second.
		if d, err := time.ParseDuration(strings.TrimSpace(every)); err == nil && d < time.Second {
			return nil, usagef(`invalid schedule %q (LAYOVER_SCHEDULE): the interval must be at least 1s, such as "@every 15m"`, spec)
		}
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, usagef(`invalid schedule %q (LAYOVER_SCHEDULE): %v; expected a cron expression such as "0 * * * *", "@hourly", "@every 15m" or "off"`, spec, err)
	}
	return s, nil
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
		log.Info("forwarding is off (LAYOVER_SCHEDULE=off); run layover forward to drain the queue")
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
