package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Targets that the report checks.
const (
	targetCeilingRatio     = 0.5 // durable ingest throughput / no-op ceiling
	targetBaselineRatio    = 3.0 // durable ingest throughput / baseline
	targetHalfRateP99      = 10 * time.Millisecond
	targetEventsPerSecond  = 50_000.0
	targetRequestsPer1000  = 10.0
	targetPeakRSSMB        = 150.0
	iterableRequestsPerSec = 10.0 // Iterable's trackBulk limit per project
)

// report collects the results of one invocation.
type report struct {
	machine   machine
	started   time.Time
	finished  time.Time
	args      []string
	short     bool
	bodyStats bodyStats
	ingest    []*ingestServer
	sync      *syncProbe
	forward   *forwardRun
	limited   *forwardRun
}

// write prints the report as Markdown.
func (r *report) write(w io.Writer) {
	m := r.machine
	fmt.Fprintf(w, "Run %s, %s, command: layover-bench %s\n\n", r.started.UTC().Format(time.RFC3339),
		r.finished.Sub(r.started).Round(time.Second), strings.Join(r.args, " "))
	if r.short {
		fmt.Fprintln(w, "Short mode (-short): the counts and durations only check that every part runs.")
		fmt.Fprintln(w, "The figures below measure nothing, and the targets do not apply to them.")
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Machine: %d cores (%s), %s memory, Linux %s, load average at start %s.\n",
		m.cores, m.cpuModel, m.memory, m.kernel, m.load)
	b := r.bodyStats
	fmt.Fprintf(w, "Bodies: %d generated mParticle batches, %d to %d bytes, mean %d.\n\n",
		b.count, b.minBytes, b.maxBytes, b.meanBytes)
	if p := r.sync; p != nil {
		fmt.Fprintf(w, "Disk: append 8 KB and fsync, %d times before the ingest rounds: p50 %s ms, p99 %s ms, max %s ms.\n\n",
			p.samples, ms(p.p50), ms(p.p99), ms(p.maxDelay))
	}
	if len(r.ingest) > 0 {
		r.writeIngest(w)
	}
	if r.forward != nil {
		r.writeForward(w)
	}
	r.writeTargets(w)
}

func (r *report) server(key string) *ingestServer {
	for _, s := range r.ingest {
		if s.key == key {
			return s
		}
	}
	return nil
}

func (r *report) writeIngest(w io.Writer) {
	ceiling, baseline := r.server("noop"), r.server("baseline")
	fmt.Fprintln(w, "### Ingest, closed loop")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios compare servers at the same connection count.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| server | connections | req/s | p50 ms | p99 ms | p99.9 ms | errors | vs ceiling | vs baseline | server CPU ms/req |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for i := range r.ingest[0].closed {
		for _, s := range r.ingest {
			run := s.closed[i]
			res := run.result
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %d | %s | %s | %.3f |\n",
				s.label, run.connections, res.throughput(), ms(res.percentile(50)), ms(res.percentile(99)),
				ms(res.percentile(99.9)), res.Errors, ratio(res.throughput(), ceiling, run.connections),
				ratio(res.throughput(), baseline, run.connections),
				float64(run.cpu.Microseconds())/1000/float64(max(res.Requests, 1)))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Ingest, each server's maximum")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The best closed-loop run of each server, whatever its connection count.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| server | req/s | at connections | vs ceiling | vs baseline | server peak RSS MB |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range r.ingest {
		b := s.best()
		fmt.Fprintf(w, "| %s | %.0f | %d | %s | %s | %.0f |\n", s.label, b.result.throughput(), b.connections,
			ratio(b.result.throughput(), ceiling, 0), ratio(b.result.throughput(), baseline, 0),
			float64(s.usage.PeakRSSKB)/1024)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Ingest, open loop at half of the maximum")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| server | offered req/s | completed req/s | p50 ms | p99 ms | p99.9 ms | errors |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range r.ingest {
		if h := s.halfRun; h != nil {
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %s | %s | %s | %d |\n", s.label, h.rate, h.result.throughput(),
				ms(h.result.percentile(50)), ms(h.result.percentile(99)), ms(h.result.percentile(99.9)), h.result.Errors)
		}
	}
	fmt.Fprintln(w)
	for _, s := range r.ingest {
		for _, run := range s.closed {
			if run.result.FirstErr != nil {
				fmt.Fprintf(w, "First error of %s at %d connections: %v\n\n", s.key, run.connections, run.result.FirstErr)
			}
		}
	}
}

func (r *report) writeForward(w io.Writer) {
	f := r.forward
	rep := f.drain.Report
	fmt.Fprintln(w, "### Forwarder, rate limit off")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| batches | events delivered | skipped | requests | drain s | events/s | CPU s per M events | peak RSS MB | pre-fill batches/s |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| %d | %d | %d | %d | %.1f | %.0f | %.1f | %.0f | %.0f |\n\n",
		f.batches, rep.Delivered, rep.Skipped, rep.Requests, f.drain.Seconds, f.eventsPerSecond(),
		f.cpuPerMillion(), float64(f.drain.PeakRSSKB)/1024, float64(f.batches)/f.prefill.Seconds())
	if l := r.limited; l != nil {
		lr := l.drain.Report
		fmt.Fprintln(w, "### Forwarder, rate limit on (10 requests per second)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| batches | events delivered | requests | requests per 1000 batches | 429 responses | drain s | sustainable batches/hour at 10 req/s |")
		fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		fmt.Fprintf(w, "| %d | %d | %d | %.1f | %d | %.1f | %.0f |\n\n",
			l.batches, lr.Delivered, lr.Requests, l.requestsPer1000(), l.simulator429s, l.drain.Seconds,
			sustainableBatchesPerHour(l))
	}
}

// sustainableBatchesPerHour returns how many batches an hour of requests at
// Iterable's limit carries, at the measured requests per batch.
func sustainableBatchesPerHour(l *forwardRun) float64 {
	return iterableRequestsPerSec * 3600 * 1000 / l.requestsPer1000()
}

// target is one line of the targets table.
type targetLine struct {
	name, figure string
	met          bool
}

func (r *report) targets() []targetLine {
	var lines []targetLine
	ceiling, baseline, layover := r.server("noop"), r.server("baseline"), r.server("sqlite")
	if layover != nil && ceiling != nil && baseline != nil {
		got, ceilingBest, baselineBest := layover.best(), ceiling.best(), baseline.best()
		c := got.result.throughput() / ceilingBest.result.throughput()
		b := got.result.throughput() / baselineBest.result.throughput()
		lines = append(lines,
			targetLine{"durable ingest (SQLite) at least 50 % of the no-op ceiling",
				fmt.Sprintf("%.0f %% (%s)", c*100, maxima(got, ceilingBest)), c >= targetCeilingRatio},
			targetLine{"durable ingest (SQLite) at least 3 times the baseline",
				fmt.Sprintf("%.2f times (%s)", b, maxima(got, baselineBest)), b >= targetBaselineRatio},
			targetLine{"ingest peak RSS under 150 MB", fmt.Sprintf("%.0f MB", float64(layover.usage.PeakRSSKB)/1024),
				float64(layover.usage.PeakRSSKB)/1024 < targetPeakRSSMB},
		)
		if h := layover.halfRun; h != nil {
			p99 := h.result.percentile(99)
			lines = append(lines, targetLine{"p99 under 10 ms at half the maximum rate",
				fmt.Sprintf("%s ms at %.0f req/s", ms(p99), h.rate), p99 < targetHalfRateP99 && h.result.Errors == 0})
		}
	}
	if f := r.forward; f != nil {
		lines = append(lines,
			targetLine{"forwarder at least 50,000 events/s, rate limit off", fmt.Sprintf("%.0f events/s", f.eventsPerSecond()),
				f.eventsPerSecond() >= targetEventsPerSecond},
			targetLine{"forwarder peak RSS under 150 MB", fmt.Sprintf("%.0f MB", float64(f.drain.PeakRSSKB)/1024),
				float64(f.drain.PeakRSSKB)/1024 < targetPeakRSSMB},
		)
	}
	if l := r.limited; l != nil {
		lines = append(lines, targetLine{"at most 10 trackBulk requests per 1000 typical batches",
			fmt.Sprintf("%.1f", l.requestsPer1000()), l.requestsPer1000() <= targetRequestsPer1000})
	}
	return lines
}

func (r *report) writeTargets(w io.Writer) {
	lines := r.targets()
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "### Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "| --- | ---: | --- |")
	for _, l := range lines {
		verdict := "met"
		switch {
		case r.short:
			// Tiny counts and durations prove nothing either way.
			verdict = "not judged (-short)"
		case !l.met:
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", l.name, l.figure, verdict)
	}
	fmt.Fprintln(w)
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000)
}

// ratio formats got divided by the reference server's throughput at the
// given connection count, or at its maximum when connections is 0.
func ratio(got float64, ref *ingestServer, connections int) string {
	if ref == nil {
		return "n/a"
	}
	run := ref.best()
	if connections > 0 {
		run = ref.at(connections)
	}
	if run == nil || run.result.throughput() == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", got/run.result.throughput())
}

// maxima formats the maxima of two servers, with their connection counts,
// for the targets table.
func maxima(got, ref *closedRun) string {
	return fmt.Sprintf("%.0f req/s at %d connections against %.0f at %d", got.result.throughput(), got.connections,
		ref.result.throughput(), ref.connections)
}
