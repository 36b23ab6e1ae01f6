package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/mapping"
)

// errUnavailable marks a run that ended because Iterable was unavailable.
var errUnavailable = forward.ErrDestinationUnavailable

// forwardFlags registers the settings of the forwarder.
func (fs *flagSet) forwardFlags() {
	c := fs.cfg
	fs.str(&c.IterableKey, "iterable-api-key", "ITERABLE_API_KEY", "", "server-side API key of the Iterable project")
	fs.str(&c.IterableURL, "iterable-base-url", "ITERABLE_BASE_URL", iterable.USBaseURL,
		"Iterable API host: "+iterable.USBaseURL+" (US) or "+iterable.EUBaseURL+" (EU)")
	fs.str(&c.MappingFile, "mapping", "LAYOVER_MAPPING", "", "JSON file that overrides the default event mapping")
	fs.integer(&c.BatchEvents, "batch-events", "LAYOVER_BATCH_EVENTS", forward.DefaultMaxEvents,
		"maximum events in one trackBulk request (1 to 1000)")
	fs.float(&c.Rate, "rate", "LAYOVER_RATE", 8, "trackBulk requests per second, 0.01 to 10 (Iterable allows 10 per project)")
	fs.integer(&c.Concurrency, "forward-concurrency", "LAYOVER_FORWARD_CONCURRENCY", forward.DefaultConcurrency,
		"trackBulk requests in flight at once (1 to 10), so that Iterable's response time does not lower the rate")
	fs.duration(&c.Visibility, "visibility-timeout", "LAYOVER_VISIBILITY_TIMEOUT", forward.DefaultVisibility,
		"how long a message being forwarded stays hidden from other runs")
	fs.duration(&c.RetryBudget, "retry-budget", "LAYOVER_RETRY_BUDGET", forward.DefaultRetryBudget,
		"time a run may wait between retries while Iterable answers 429 or 5xx")
}

// forwardSetup holds the mapper and the Iterable client of a forwarder,
// built and checked before anything opens the queue.
type forwardSetup struct {
	mapper *mapping.Mapper
	client *iterable.Client
}

// checkForwardConfig checks the Iterable key and the forward settings and
// builds the mapper and the Iterable client, before anything opens the
// queue.
func checkForwardConfig(c *config) (*forwardSetup, error) {
	if strings.TrimSpace(c.IterableKey) == "" {
		return nil, usagef("missing Iterable API key: set ITERABLE_API_KEY (or -iterable-api-key) to a server-side key of the project")
	}
	mapper, err := checkForwardSettings(c)
	if err != nil {
		return nil, err
	}
	// The client checks the key's characters, which the checks above do not.
	client, err := iterable.NewClient(iterable.ClientOptions{
		BaseURL:           c.IterableURL,
		APIKey:            c.IterableKey,
		RequestsPerSecond: c.Rate,
		UserAgent:         "layover/" + version,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return &forwardSetup{mapper: mapper, client: client}, nil
}

// newForwarder builds the forwarder on eng from setup.
func newForwarder(c *config, setup *forwardSetup, eng *engine, log *slog.Logger) *forward.Forwarder {
	return forward.New(eng, eng.rejects, setup.mapper, setup.client, forward.Options{
		MaxEvents:   c.BatchEvents,
		Concurrency: c.Concurrency,
		Visibility:  c.Visibility,
		RetryBudget: c.RetryBudget,
		Logger:      log.With("component", "forward"),
	})
}

// checkForwardSettings validates the forwarder's settings other than the
// Iterable key and returns the mapper they select. serve calls it even when
// its schedule is off, so that a bad value shows at start-up and not in the
// first layover forward.
func checkForwardSettings(c *config) (*mapping.Mapper, error) {
	if err := iterable.CheckBaseURL(c.IterableURL); err != nil {
		return nil, usageError{err}
	}
	if c.BatchEvents < 1 || c.BatchEvents > 1000 {
		return nil, usagef("invalid batch size %d (LAYOVER_BATCH_EVENTS): expected 1 to 1000", c.BatchEvents)
	}
	// NaN fails both comparisons. Below 0.01 requests per second, a run over
	// a large queue would take weeks and keep its batches in flight meanwhile.
	if !(c.Rate >= 0.01 && c.Rate <= 10) {
		return nil, usagef("invalid rate %g (LAYOVER_RATE): expected 0.01 to 10 requests per second; 10 is Iterable's limit per project", c.Rate)
	}
	if c.Concurrency < 1 || c.Concurrency > 10 {
		return nil, usagef("invalid concurrency %d (LAYOVER_FORWARD_CONCURRENCY): expected 1 to 10", c.Concurrency)
	}
	if c.Visibility < time.Second || c.Visibility > 12*time.Hour {
		return nil, usagef("invalid visibility timeout %s (LAYOVER_VISIBILITY_TIMEOUT): expected 1s to 12h", c.Visibility)
	}
	if c.RetryBudget <= 0 {
		// forward.Options takes zero or less as its 2m default.
		return nil, usagef("invalid retry budget %s (LAYOVER_RETRY_BUDGET): expected a positive duration shorter than the visibility timeout %s, such as %s",
			c.RetryBudget, c.Visibility, forward.DefaultRetryBudget)
	}
	if c.RetryBudget >= c.Visibility {
		return nil, usagef("retry budget %s (LAYOVER_RETRY_BUDGET) must be shorter than the visibility timeout %s", c.RetryBudget, c.Visibility)
	}

	cfg := mapping.DefaultConfig()
	if c.MappingFile != "" {
		var err error
		if cfg, err = mapping.LoadConfig(c.MappingFile); err != nil {
			return nil, usageError{fmt.Errorf("mapping file %q (LAYOVER_MAPPING): %w", c.MappingFile, err)}
		}
	}
	mapper, err := mapping.New(cfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("mapping: %w", err)}
	}
	return mapper, nil
}

// runForward drains the queue once and exits: for cron jobs, Kubernetes
// CronJobs and manual runs.
func runForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("forward", stderr)
	fs.queueFlags()
	fs.forwardFlags()
	fs.logFlags()
	c, err := fs.parse(args)
	if err != nil {
		return err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}

	setup, err := checkForwardConfig(c)
	if err != nil {
		return err
	}
	eng, err := openQueue(ctx, c, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	f := newForwarder(c, setup, eng, log)
	if eng.lockForwarder != nil {
		unlock, ok, err := eng.lockForwarder(ctx)
		if err != nil {
			return fmt.Errorf("take the forwarder lock: %w", err)
		}
		if !ok {
			fmt.Fprintln(stdout, "forward: another layover process is forwarding from this queue; nothing to do")
			return nil
		}
		defer unlock()
	}
	_, err = forwardOnce(ctx, f, stdout)
	return err
}

// forwardOnce runs the forwarder once, prints its report and returns it
// with the run's error.
func forwardOnce(ctx context.Context, f *forward.Forwarder, stdout io.Writer) (forward.Report, error) {
	start := time.Now()
	report, err := f.Run(ctx)
	fmt.Fprintf(stdout, "forward: %s in %s\n", report, time.Since(start).Round(time.Millisecond))
	switch {
	case err == nil:
		return report, nil
	case errors.Is(err, forward.ErrDestinationUnavailable):
		return report, fmt.Errorf("forward run stopped, messages kept for the next run: %w", err)
	}
	return report, fmt.Errorf("forward run failed: %w", err)
}
