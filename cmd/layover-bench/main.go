// Command layover-bench measures Layover side by side with reference
// servers on the same machine, in one invocation, and prints Markdown
// tables with each result's ratio to the ceiling and the targets.
//
//	go run ./cmd/layover-bench            # ingest and forwarder, about 3 minutes
//	go run ./cmd/layover-bench -short     # a few seconds, for CI
//	go run ./cmd/layover-bench soak       # 10 minutes at half the maximum rate
//
// The ingest benchmark POSTs generated mParticle batches of 5 to 10 KB over
// keep-alive connections to four servers. A no-op handler is the ceiling,
// and a server that commits and syncs one SQLite transaction per request is
// the baseline. Then come layover serve on its SQLite queue and, when
// LAYOVER_BENCH_POSTGRES_URL or LAYOVER_TEST_POSTGRES_URL is set, layover
// serve on PostgreSQL. The forwarder benchmark drains a pre-filled SQLite
// queue into the Iterable simulator. Every server listens on 127.0.0.1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(childEnv) == "1" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		os.Exit(runChild(os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "soak" {
		err = runSoak(ctx, os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = runBench(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "layover-bench:", err)
		os.Exit(1)
	}
}

// runChild runs one of the child commands that the driver starts.
func runChild(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "layover-bench child: missing command")
		return 2
	}
	var err error
	switch args[0] {
	case cmdServeReference:
		err = runReferenceServer(args[1:])
	case cmdForwardDrain:
		err = runForwardDrain(args[1:])
	default:
		err = fmt.Errorf("unknown child command %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "layover-bench %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// benchConfig holds the settings of one benchmark invocation.
type benchConfig struct {
	connections      []int // closed-loop connection counts, each measured
	rounds           int
	warmup           time.Duration
	duration         time.Duration
	halfRateDuration time.Duration
	batches          int
	limitedBatches   int
	layoverBin       string
	postgresURL      string // with the benchmark's own schema once set up
	postgresNote     string // durability settings of the server, for the label
	profileDir       string
	short            bool // tiny counts: the run checks, it does not measure
	keepDir          bool
	skipIngest       bool
	skipForward      bool
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchConfig, error) {
	cfg := &benchConfig{}
	fs := flag.NewFlagSet("layover-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: layover-bench [flags]       ingest and forwarder benchmarks, side by side")
		fmt.Fprintln(stderr, "       layover-bench soak [flags]  10 minutes at half the maximum rate (soak -h for its flags)")
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	cfg.connections = []int{64, 256}
	fs.Var((*intList)(&cfg.connections), "connections",
		"comma-separated counts of concurrent keep-alive connections; the closed loop runs at each")
	fs.IntVar(&cfg.rounds, "rounds", 2, "interleaved measuring rounds per server")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured load per server before the rounds")
	fs.DurationVar(&cfg.duration, "duration", 8*time.Second, "length of one measuring round")
	fs.DurationVar(&cfg.halfRateDuration, "half-rate-duration", 10*time.Second, "length of the open-loop run at half the maximum rate")
	fs.IntVar(&cfg.batches, "batches", 100_000, "batches in the queue that the unpaced forwarder drains")
	fs.IntVar(&cfg.limitedBatches, "limited-batches", 3000, "batches forwarded at 10 requests per second (0 skips this run)")
	fs.StringVar(&cfg.layoverBin, "layover", "", "layover binary to test; empty builds ./cmd/layover of this module")
	fs.StringVar(&cfg.profileDir, "profile-dir", "", "write CPU profiles of the forwarder runs to this folder")
	fs.BoolVar(&cfg.keepDir, "keep", false, "keep the work folder with the queues and server logs")
	fs.BoolVar(&cfg.skipIngest, "skip-ingest", false, "run only the forwarder benchmark")
	fs.BoolVar(&cfg.skipForward, "skip-forward", false, "run only the ingest benchmark")
	short := fs.Bool("short", false, "tiny counts and durations: checks that everything runs, measures nothing")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *short {
		cfg.short = true
		cfg.connections, cfg.rounds = []int{4}, 1
		cfg.warmup, cfg.duration, cfg.halfRateDuration = 100*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
		cfg.batches, cfg.limitedBatches = 300, 150
	}
	if len(cfg.connections) == 0 || slices.Min(cfg.connections) < 1 || cfg.rounds < 1 || cfg.duration <= 0 || cfg.batches < 1 || cfg.limitedBatches < 0 {
		return nil, errors.New("invalid settings: -connections, -rounds, -duration and -batches must be positive")
	}
	cfg.postgresURL = os.Getenv("LAYOVER_BENCH_POSTGRES_URL")
	if cfg.postgresURL == "" {
		cfg.postgresURL = os.Getenv("LAYOVER_TEST_POSTGRES_URL")
	}
	return cfg, nil
}

// runBench runs the ingest and the forwarder benchmarks and prints the
// report to stdout and progress to stderr.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	// This process runs the load generator and the Iterable simulator. Its
	// memory is not measured, and fewer collections leave more CPU to the
	// processes under test.
	debug.SetGCPercent(400)
	workDir, err := os.MkdirTemp("", "layover-bench-")
	if err != nil {
		return err
	}
	if cfg.keepDir {
		fmt.Fprintln(stderr, "work folder:", workDir)
	} else {
		defer os.RemoveAll(workDir)
	}

	rep := &report{machine: describeMachine(), started: time.Now(), args: args, short: cfg.short}
	set := generateBodies(1, 512)
	rep.bodyStats = describeBodies(set)
	if !cfg.skipIngest {
		if rep.ingest, err = benchIngest(ctx, cfg, workDir, set.bodies, rep, stderr); err != nil {
			return err
		}
	}
	if !cfg.skipForward {
		if err := benchForward(ctx, cfg, workDir, set, rep, stderr); err != nil {
			return err
		}
	}
	rep.finished = time.Now()
	rep.write(stdout)
	return nil
}

// benchIngest builds layover when needed, prepares PostgreSQL and runs the
// ingest comparison.
func benchIngest(ctx context.Context, cfg *benchConfig, workDir string, bodies [][]byte, rep *report,
	stderr io.Writer) ([]*ingestServer, error) {
	if cfg.layoverBin == "" {
		fmt.Fprintln(stderr, "building layover")
		bin, err := buildLayover(ctx, workDir)
		if err != nil {
			return nil, err
		}
		cfg.layoverBin = bin
	}
	if cfg.postgresURL != "" {
		cleanup, err := preparePostgres(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer cleanup()
	}
	probe, err := probeSync(workDir, 200)
	if err != nil {
		return nil, fmt.Errorf("probe the disk: %w", err)
	}
	rep.sync = &probe
	servers, err := startIngestServers(ctx, cfg, workDir, bodies)
	if err != nil {
		return nil, err
	}
	err = runIngest(ctx, cfg, servers, stderr)
	stopIngestServers(servers)
	return servers, err
}

// benchForward runs the unpaced and the rate-limited forwarder benchmarks.
func benchForward(ctx context.Context, cfg *benchConfig, workDir string, set bodySet, rep *report,
	stderr io.Writer) error {
	fmt.Fprintf(stderr, "forwarder: pre-filling %d batches, then draining them unpaced\n", cfg.batches)
	run, err := runForwardBench(ctx, cfg, workDir+"/forward", set, cfg.batches, false, 0)
	if err != nil {
		return err
	}
	rep.forward = &run
	if cfg.limitedBatches == 0 {
		return nil
	}
	fmt.Fprintf(stderr, "forwarder: %d batches at 10 requests per second\n", cfg.limitedBatches)
	limited, err := runForwardBench(ctx, cfg, workDir+"/forward-limited", set, cfg.limitedBatches, true, 10)
	if err != nil {
		return err
	}
	rep.limited = &limited
	return nil
}

// intList is a flag of comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for part := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return fmt.Errorf("invalid connection count %q: give positive integers such as 64,256", part)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	*l = out
	return nil
}
