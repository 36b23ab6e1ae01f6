package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqlite"
)

// drainResult is the report of the forward-drain child, printed on its
// standard output as one JSON object.
type drainResult struct {
	Report     forward.Report
	Seconds    float64 // wall time of the forward run
	CPUSeconds float64 // user plus system time of the forward run
	PeakRSSKB  int64   // peak RSS of the child process (VmHWM)
	Error      string  `json:",omitempty"`
}

// forwardRun is one forwarder benchmark: the pre-fill and the drain.
type forwardRun struct {
	batches       int
	prefill       time.Duration
	drain         drainResult
	simulator429s int
}

// eventsPerSecond returns the delivered events per second of wall time.
func (r forwardRun) eventsPerSecond() float64 {
	return float64(r.drain.Report.Delivered) / r.drain.Seconds
}

// cpuPerMillion returns the CPU seconds per million delivered events.
func (r forwardRun) cpuPerMillion() float64 {
	return r.drain.CPUSeconds / float64(r.drain.Report.Delivered) * 1e6
}

// requestsPer1000 returns the trackBulk requests per 1000 batches.
func (r forwardRun) requestsPer1000() float64 {
	return float64(r.drain.Report.Requests) / float64(r.batches) * 1000
}

// runForwardBench pre-fills a SQLite queue with batches, starts a simulator
// in this process (rate limit on or off) and drains the queue with a
// forwarder in a child process, paced at rps (0 for no pacing).
func runForwardBench(ctx context.Context, cfg *benchConfig, dir string, set bodySet, batches int,
	limited bool, rps float64) (forwardRun, error) {
	run := forwardRun{batches: batches}
	start := time.Now()
	if err := prefill(ctx, dir, set, batches); err != nil {
		return run, err
	}
	run.prefill = time.Since(start)

	// The benchmark reads the forwarder's report, not the stored events,
	// and storing 800,000 of them would cost the simulator memory and CPU
	// that the forwarder shares.
	opts := iterabletest.Options{RateLimit: -1, DiscardEvents: true}
	if limited {
		opts.RateLimit = iterabletest.DefaultRateLimit
	}
	sim := iterabletest.New(opts)
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return run, err
	}
	defer sim.Close()

	args := []string{"-data-dir", dir, "-iterable-url", url, "-rate", fmt.Sprint(rps)}
	if cfg.profileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(cfg.profileDir, fmt.Sprintf("forward-%d.pprof", batches)))
	}
	cmd, err := selfCommand(cmdForwardDrain, args...)
	if err != nil {
		return run, err
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	stopProfile, err := profileSimulator(cfg, batches)
	if err != nil {
		return run, err
	}
	err = cmd.Run()
	stopProfile()
	if err != nil {
		return run, fmt.Errorf("forward-drain child: %w", err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &run.drain); err != nil {
		return run, fmt.Errorf("read forward-drain result %q: %w", stdout.String(), err)
	}
	if run.drain.Error != "" {
		return run, fmt.Errorf("forward run: %s", run.drain.Error)
	}
	run.simulator429s = sim.Stats().ByStatus[429]
	return run, nil
}

// prefill sends n unique batches to a new SQLite queue in dir from 64
// goroutines, so that group commit stores them quickly.
func prefill(ctx context.Context, dir string, set bodySet, n int) error {
	q, err := sqlite.Open(ctx, dir, queue.Options{})
	if err != nil {
		return fmt.Errorf("pre-fill: %w", err)
	}
	const senders = 64
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := s; i < n; i += senders {
				if _, err := q.Send(ctx, set.unique(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		q.Close()
		return fmt.Errorf("pre-fill: %w", err)
	}
	if err := q.Close(); err != nil {
		return fmt.Errorf("pre-fill: %w", err)
	}
	return nil
}

// runForwardDrain is the forward-drain child: one forward run over a SQLite
// queue into the Iterable endpoint at -iterable-url, built in-process so
// that it can send faster than the 10 requests per second that the layover
// command allows. It prints a drainResult as JSON.
func runForwardDrain(args []string) error {
	fs := flag.NewFlagSet(cmdForwardDrain, flag.ContinueOnError)
	dir := fs.String("data-dir", "", "folder of the SQLite queue")
	baseURL := fs.String("iterable-url", "", "base URL of the Iterable simulator")
	rps := fs.Float64("rate", 0, "trackBulk requests per second; 0 sends without pacing")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	q, err := sqlite.Open(ctx, *dir, queue.Options{})
	if err != nil {
		return err
	}
	defer q.Close()
	f, err := newBenchForwarder(q, *baseURL, *rps)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		out, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	before := rusage()
	start := time.Now()
	report, runErr := f.Run(ctx)
	res := drainResult{Report: report, Seconds: time.Since(start).Seconds()}
	after := rusage()
	res.CPUSeconds = cpuSeconds(after) - cpuSeconds(before)
	peak, err := procStatusKB("/proc/self/status", "VmHWM")
	if err != nil {
		return err
	}
	res.PeakRSSKB = peak
	if runErr != nil {
		res.Error = runErr.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// newBenchForwarder returns a forwarder with the default mapping and
// options, sending to baseURL at rps requests per second (0: unpaced).
func newBenchForwarder(q *sqlite.Queue, baseURL string, rps float64) (*forward.Forwarder, error) {
	mapper, err := mapping.New(mapping.DefaultConfig())
	if err != nil {
		return nil, err
	}
	if rps <= 0 {
		rps = math.Inf(1) // the client's limiter then lets every request through
	}
	client, err := iterable.NewClient(iterable.ClientOptions{
		BaseURL:           baseURL,
		APIKey:            iterabletest.DefaultAPIKey,
		RequestsPerSecond: rps,
	})
	if err != nil {
		return nil, err
	}
	return forward.New(q, q, mapper, client, forward.Options{}), nil
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func cpuSeconds(ru syscall.Rusage) float64 {
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// profileSimulator starts a CPU profile of this process, which runs the
// simulator, when cfg sets a profile folder. The returned function stops it.
func profileSimulator(cfg *benchConfig, batches int) (func(), error) {
	if cfg.profileDir == "" {
		return func() {}, nil
	}
	out, err := os.Create(filepath.Join(cfg.profileDir, fmt.Sprintf("simulator-%d.pprof", batches)))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}
