package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// buildLayover builds ./cmd/layover of the module in the working folder's
// tree into dir and returns the binary's path.
func buildLayover(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run layover-bench inside the Layover module, or pass -layover")
	}
	bin := filepath.Join(dir, "layover")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/layover")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build layover: %w\n%s", err, out)
	}
	return bin, nil
}

// preparePostgres creates a schema of the benchmark's own in the database
// of cfg.postgresURL, points the URL at it and returns a function that drops
// it. It also records the server's durability settings for the report.
func preparePostgres(ctx context.Context, cfg *benchConfig) (func(), error) {
	u, err := url.Parse(cfg.postgresURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("invalid PostgreSQL URL in LAYOVER_BENCH_POSTGRES_URL or LAYOVER_TEST_POSTGRES_URL: " +
			"expected postgres://user@host:port/database")
	}
	conn, err := pgx.Connect(ctx, cfg.postgresURL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	schema := fmt.Sprintf("layover_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	var fsync, syncCommit string
	err = conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").
		Scan(&fsync, &syncCommit)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("read PostgreSQL settings: %w", err)
	}
	cfg.postgresNote = fmt.Sprintf(" (fsync=%s, synchronous_commit=%s)", fsync, syncCommit)

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	cfg.postgresURL = u.String()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
		}
		conn.Close(ctx)
	}, nil
}

// machine describes the machine the benchmark ran on.
type machine struct {
	cpuModel string
	cores    int
	memory   string
	load     string // load averages at the start
	kernel   string
}

func describeMachine() machine {
	m := machine{cores: runtime.NumCPU(), cpuModel: "unknown", memory: "unknown", load: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m.cpuModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
		f.Close()
	}
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) == nil {
		m.memory = fmt.Sprintf("%.1f GiB", float64(info.Totalram)*float64(info.Unit)/(1<<30))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.load = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(data))
	}
	return m
}

// bodyStats summarises the generated webhook bodies.
type bodyStats struct {
	count, minBytes, maxBytes, meanBytes int
}

func describeBodies(set bodySet) bodyStats {
	s := bodyStats{count: len(set.bodies), minBytes: 1 << 30}
	total := 0
	for _, b := range set.bodies {
		total += len(b)
		s.minBytes = min(s.minBytes, len(b))
		s.maxBytes = max(s.maxBytes, len(b))
	}
	s.meanBytes = total / max(len(set.bodies), 1)
	return s
}

// syncProbe is the latency of appending 8 KB to a file and syncing it, the
// disk's share of every durable commit.
type syncProbe struct {
	samples            int
	p50, p99, maxDelay time.Duration
}

// probeSync appends and syncs 8 KB n times in dir.
func probeSync(dir string, n int) (syncProbe, error) {
	f, err := os.CreateTemp(dir, "sync-probe-")
	if err != nil {
		return syncProbe{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 8192)
	res := loadResult{}
	for range n {
		if _, err := f.Write(block); err != nil {
			return syncProbe{}, err
		}
		start := time.Now()
		if err := f.Sync(); err != nil {
			return syncProbe{}, err
		}
		res.Latencies = append(res.Latencies, time.Since(start))
	}
	slices.Sort(res.Latencies)
	return syncProbe{samples: n, p50: res.percentile(50), p99: res.percentile(99), maxDelay: res.percentile(100)}, nil
}
