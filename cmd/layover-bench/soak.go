package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// soakSample is one window of the soak run.
type soakSample struct {
	at     time.Duration // end of the window, from the start of the soak
	result loadResult
	rssKB  int64
}

// runSoak runs layover serve on its SQLite queue at a fixed rate for a long
// time and samples the server's RSS after every window, to show whether its
// memory stays flat. The rate defaults to half of the maximum that a short
// closed-loop run measures first.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("layover-bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Minute, "length of the soak")
	window := fs.Duration("interval", 10*time.Second, "RSS sampling interval")
	rate := fs.Float64("rate", 0, "requests per second; 0 uses half of the maximum measured first")
	connections := intList{64, 256}
	fs.Var(&connections, "connections", "comma-separated connection counts of the closed-loop runs that measure the maximum")
	layoverBin := fs.String("layover", "", "layover binary to test; empty builds ./cmd/layover of this module")
	if err := fs.Parse(args); err != nil {
		return err
	}
	workDir, err := os.MkdirTemp("", "layover-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(workDir)
	cfg := &benchConfig{layoverBin: *layoverBin, connections: connections}
	if cfg.layoverBin == "" {
		if cfg.layoverBin, err = buildLayover(ctx, workDir); err != nil {
			return err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := layoverCommand(cfg, addr, "LAYOVER_DATA_DIR="+filepath.Join(workDir, "data"))
	srv, err := startServer(ctx, "sqlite", cmd, addr, workDir)
	if err != nil {
		return err
	}
	set := generateBodies(1, 512)
	workers := slices.Max(connections) * 2
	load := newLoadGenerator(set.bodies, workers)
	defer load.close()
	t := target{url: "http://" + addr + "/event-batch", authorization: "Bearer " + benchAPIKey}

	load.closedLoop(ctx, t, connections[0], 3*time.Second)
	if *rate <= 0 {
		best, at := 0.0, 0
		for _, n := range connections {
			if got := load.closedLoop(ctx, t, n, 8*time.Second).throughput(); got > best {
				best, at = got, n
			}
		}
		*rate = best / 2
		fmt.Fprintf(stderr, "maximum %.0f req/s at %d connections; soaking at %.0f req/s for %s\n", best, at, *rate, *duration)
	}
	samples, err := soakWindows(ctx, srv, load, t, *rate, workers, *duration, *window, stderr)
	u, stopErr := srv.stop()
	if err != nil {
		return err
	}
	if stopErr != nil {
		return stopErr
	}
	writeSoak(stdout, *rate, *window, samples, u)
	return nil
}

// soakWindows runs the open-loop load in consecutive windows and samples
// the server's RSS after each.
func soakWindows(ctx context.Context, srv *server, load *loadGenerator, t target, rate float64, workers int,
	duration, window time.Duration, log io.Writer) ([]soakSample, error) {
	var samples []soakSample
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < duration && ctx.Err() == nil; elapsed = time.Since(start) {
		res := load.openLoop(ctx, t, rate, workers, min(window, duration-elapsed))
		rss, err := srv.rssKB()
		if err != nil {
			return samples, err
		}
		s := soakSample{at: time.Since(start), result: res, rssKB: rss}
		samples = append(samples, s)
		fmt.Fprintf(log, "%6s  %6.0f req/s  p99 %6s ms  errors %d  RSS %6.1f MB\n", s.at.Round(time.Second),
			res.throughput(), ms(res.percentile(99)), res.Errors, float64(rss)/1024)
	}
	return samples, ctx.Err()
}

func writeSoak(w io.Writer, rate float64, window time.Duration, samples []soakSample, u usage) {
	if len(samples) == 0 {
		return
	}
	var total loadResult
	maxRSS := int64(0)
	for _, s := range samples {
		total = total.merge(s.result)
		maxRSS = max(maxRSS, s.rssKB)
	}
	first, last := samples[0], samples[len(samples)-1]
	fmt.Fprintf(w, "Soak: layover serve (SQLite) at %.0f req/s offered for %s, RSS sampled every %s.\n\n",
		rate, last.at.Round(time.Second), window)
	fmt.Fprintln(w, "| completed req/s | p50 ms | p99 ms | p99.9 ms | errors | RSS after first window MB | RSS at end MB | max sampled RSS MB | peak RSS (VmHWM) MB |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| %.0f | %s | %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n\n", total.throughput(),
		ms(total.percentile(50)), ms(total.percentile(99)), ms(total.percentile(99.9)), total.Errors,
		float64(first.rssKB)/1024, float64(last.rssKB)/1024, float64(maxRSS)/1024, float64(u.PeakRSSKB)/1024)
	fmt.Fprintln(w, "RSS samples, MB:")
	for i, s := range samples {
		fmt.Fprintf(w, "%.1f", float64(s.rssKB)/1024)
		if i < len(samples)-1 {
			fmt.Fprint(w, " ")
		}
	}
	fmt.Fprintln(w)
}
