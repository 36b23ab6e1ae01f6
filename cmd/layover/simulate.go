package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/layover-dev/layover/iterable/iterabletest"
)

// defaultSimulateAddr is the listen address of layover simulate when -addr
// is not set. A fixed port keeps the printed settings the same from one run
// to the next.
const defaultSimulateAddr = "127.0.0.1:8089"

// runSimulate runs the Iterable simulator on a loopback address until the
// process is interrupted, for trying layover serve and layover forward by
// hand without an Iterable project. On exit it prints what it received.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	var (
		addr      string
		key       string
		rateLimit float64
	)
	fs.str(&addr, "addr", "LAYOVER_SIMULATE_ADDR", defaultSimulateAddr,
		"loopback address to listen on; port 0 picks a free port")
	fs.str(&key, "api-key", "LAYOVER_SIMULATE_API_KEY", iterabletest.DefaultAPIKey,
		"API key that the simulated project accepts")
	fs.float(&rateLimit, "rate-limit", "LAYOVER_SIMULATE_RATE_LIMIT", iterabletest.DefaultRateLimit,
		"trackBulk requests per second before 429, as Iterable; 0 or less turns the limit off")
	if _, err := fs.parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(key) == "" {
		return usagef("simulate: missing API key (-api-key, LAYOVER_SIMULATE_API_KEY): set any non-empty text")
	}
	if rateLimit <= 0 {
		rateLimit = -1 // iterabletest turns the limit off for a negative rate
	}

	if err := checkLoopback(addr); err != nil {
		return err
	}

	sim := iterabletest.New(iterabletest.Options{
		Projects:  []iterabletest.Project{{APIKey: key, Type: iterabletest.Hybrid}},
		RateLimit: rateLimit,
	})
	baseURL, err := sim.Start(addr)
	if err != nil {
		return usagef("simulate: %v; choose another address with -addr, such as 127.0.0.1:0", err)
	}
	defer sim.Close()

	fmt.Fprintf(stdout, "Iterable simulator listening on %s\n", baseURL)
	fmt.Fprintf(stdout, "Settings for layover serve or layover forward:\n  ITERABLE_BASE_URL=%s ITERABLE_API_KEY=%s\n",
		baseURL, key)
	fmt.Fprintf(stdout, "Read a user's events back with:\n  curl -H 'Api-Key: %s' %s/api/events/USER_EMAIL\n", key, baseURL)
	fmt.Fprintln(stdout, "Press Ctrl-C to stop and print what it received.")

	<-ctx.Done()
	stats := sim.Stats()
	fmt.Fprintf(stdout, "\ntrackBulk requests: %d\n", stats.Requests)
	for _, status := range slices.Sorted(maps.Keys(stats.ByStatus)) {
		outcome := fmt.Sprintf("HTTP %d", status)
		if status == 0 {
			outcome = "no response"
		}
		fmt.Fprintf(stdout, "   %-30s %d\n", outcome, stats.ByStatus[status])
	}
	printEventCounts(stdout, sim.Events(key))
	return nil
}

// checkLoopback rejects a listen address off the loopback interface, so
// that the simulator, which accepts any event for its key, stays out of
// reach of other machines.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("simulate: invalid address %q (-addr, LAYOVER_SIMULATE_ADDR): %v; give host:port, such as %s",
			addr, err, defaultSimulateAddr)
	}
	if !iterabletest.IsLoopbackHost(host) {
		return usagef("simulate: invalid address %q (-addr, LAYOVER_SIMULATE_ADDR): the simulator listens "+
			"only on a loopback address, such as %s", addr, defaultSimulateAddr)
	}
	return nil
}
