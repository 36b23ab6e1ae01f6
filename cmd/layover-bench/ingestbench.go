package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// benchAPIKey is the webhook key of the layover serve processes under test.
const benchAPIKey = "bench-key"

// ingestServer is one server of the ingest comparison and what it measured.
type ingestServer struct {
	key     string // noop, baseline, sqlite or postgres
	label   string
	srv     *server
	load    *loadGenerator
	target  target
	closed  []*closedRun // one per connection count, in the order of the flag
	usage   usage        // whole process, read after it stopped
	halfRun *halfRateRun // open loop at half the maximum, layover only
}

// closedRun is the closed-loop load at one connection count, every round
// pooled.
type closedRun struct {
	connections int
	result      loadResult
	cpu         time.Duration // server CPU time during the measured windows
}

// at returns the run at the given connection count, or nil.
func (s *ingestServer) at(connections int) *closedRun {
	for _, c := range s.closed {
		if c.connections == connections {
			return c
		}
	}
	return nil
}

// best returns the closed-loop run with the highest throughput: the
// server's maximum over the connection counts.
func (s *ingestServer) best() *closedRun {
	var best *closedRun
	for _, c := range s.closed {
		if best == nil || c.result.throughput() > best.result.throughput() {
			best = c
		}
	}
	return best
}

// halfRateRun is an open-loop run at half of a server's maximum throughput.
type halfRateRun struct {
	rate   float64
	result loadResult
}

// isLayover reports whether the server is a layover serve process.
func (s *ingestServer) isLayover() bool {
	return s.key == "sqlite" || s.key == "postgres"
}

// startIngestServers starts the servers of the comparison: the no-op
// ceiling, the one-sync-per-request baseline, layover serve on SQLite and,
// when cfg names a database, layover serve on PostgreSQL.
func startIngestServers(ctx context.Context, cfg *benchConfig, workDir string, bodies [][]byte) ([]*ingestServer, error) {
	var servers []*ingestServer
	add := func(key, label string, cmd *exec.Cmd, addr string) error {
		srv, err := startServer(ctx, key, cmd, addr, workDir)
		if err != nil {
			return err
		}
		t := target{url: "http://" + addr + "/event-batch"}
		if key == "sqlite" || key == "postgres" {
			t.authorization = "Bearer " + benchAPIKey
		}
		servers = append(servers, &ingestServer{
			key: key, label: label, srv: srv, target: t,
			load: newLoadGenerator(bodies, slices.Max(cfg.connections)*2),
		})
		for _, n := range cfg.connections {
			servers[len(servers)-1].closed = append(servers[len(servers)-1].closed, &closedRun{connections: n})
		}
		return nil
	}
	specs := []struct {
		key, label string
		command    func(addr string) (*exec.Cmd, error)
	}{
		{"noop", "no-op handler (ceiling)", func(addr string) (*exec.Cmd, error) {
			return selfCommand(cmdServeReference, "-kind", "noop", "-listen", addr)
		}},
		{"baseline", "baseline: 1 SQLite transaction + sync per request", func(addr string) (*exec.Cmd, error) {
			return selfCommand(cmdServeReference, "-kind", "baseline", "-listen", addr,
				"-data-dir", filepath.Join(workDir, "baseline"))
		}},
		{"sqlite", "layover serve, SQLite queue", func(addr string) (*exec.Cmd, error) {
			return layoverCommand(cfg, addr, "LAYOVER_DATA_DIR="+filepath.Join(workDir, "layover-sqlite")), nil
		}},
	}
	if cfg.postgresURL != "" {
		specs = append(specs, struct {
			key, label string
			command    func(addr string) (*exec.Cmd, error)
		}{"postgres", "layover serve, PostgreSQL queue" + cfg.postgresNote, func(addr string) (*exec.Cmd, error) {
			return layoverCommand(cfg, addr, "LAYOVER_QUEUE="+cfg.postgresURL), nil
		}})
	}
	for _, spec := range specs {
		addr, err := freeAddr()
		if err == nil {
			var cmd *exec.Cmd
			if cmd, err = spec.command(addr); err == nil {
				err = add(spec.key, spec.label, cmd, addr)
			}
		}
		if err != nil {
			stopIngestServers(servers)
			return nil, err
		}
	}
	return servers, nil
}

// layoverCommand returns a layover serve command on addr with forwarding
// off and authentication on, plus the extra environment.
func layoverCommand(cfg *benchConfig, addr string, env ...string) *exec.Cmd {
	cmd := exec.Command(cfg.layoverBin, "serve")
	cmd.Env = append(os.Environ(),
		"LAYOVER_LISTEN="+addr,
		"LAYOVER_API_KEYS="+benchAPIKey,
		"LAYOVER_SCHEDULE=off",
		"LAYOVER_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// stopIngestServers stops every server and records its resource usage.
func stopIngestServers(servers []*ingestServer) {
	for _, s := range servers {
		u, err := s.srv.stop()
		if err != nil {
			slog.Warn("stopping server failed", "server", s.key, "error", err)
		}
		s.usage = u
		s.load.close()
	}
}

// runIngest measures every server, closed loop at each connection count,
// in interleaved rounds so that a busy moment of the shared machine hits
// all of them alike. Then it runs each layover server open loop at half
// its maximum, the best of its closed-loop runs.
func runIngest(ctx context.Context, cfg *benchConfig, servers []*ingestServer, log io.Writer) error {
	for _, s := range servers {
		fmt.Fprintf(log, "warm-up %s (%s)\n", s.key, cfg.warmup)
		s.load.closedLoop(ctx, s.target, cfg.connections[0], cfg.warmup)
	}
	for round := 1; round <= cfg.rounds; round++ {
		for _, n := range cfg.connections {
			for _, s := range servers {
				run := s.at(n)
				if err := measureClosed(ctx, cfg, s, run); err != nil {
					return err
				}
				fmt.Fprintf(log, "round %d %-8s %4d connections %8.0f req/s  p99 %s\n", round, s.key, n,
					run.result.throughput(), run.result.percentile(99))
			}
		}
	}
	for _, s := range servers {
		if !s.isLayover() || s.best().result.throughput() == 0 {
			continue
		}
		rate := s.best().result.throughput() / 2
		res := s.load.openLoop(ctx, s.target, rate, slices.Max(cfg.connections)*2, cfg.halfRateDuration)
		s.halfRun = &halfRateRun{rate: rate, result: res}
		fmt.Fprintf(log, "half rate %-8s %8.0f req/s  p99 %s\n", s.key, res.throughput(), res.percentile(99))
	}
	return ctx.Err()
}

// measureClosed runs one closed-loop window of s at run's connection
// count and adds it to run.
func measureClosed(ctx context.Context, cfg *benchConfig, s *ingestServer, run *closedRun) error {
	before, err := s.srv.cpuTime()
	if err != nil {
		return err
	}
	res := s.load.closedLoop(ctx, s.target, run.connections, cfg.duration)
	after, err := s.srv.cpuTime()
	if err != nil {
		return err
	}
	run.cpu += after - before
	run.result = run.result.merge(res)
	return ctx.Err()
}
