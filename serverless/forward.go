package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/mapping"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqs"
)

// cleanupTime is the time a run needs after its context ends: the release
// of held messages and the final delete, each bounded by
// forward.DefaultDeleteTimeout, and a margin for the response.
const cleanupTime = 2*forward.DefaultDeleteTimeout + 5*time.Second

// Forwarder is the Lambda handler of the scheduled forward run. Each
// invocation reads the Iterable key, opens the queue and drains it once, so
// a rotated key takes effect at the next run without a new deployment.
type Forwarder struct {
	cfg       ForwardConfig
	mapper    *mapping.Mapper
	secrets   *SecretReader
	log       *slog.Logger
	userAgent string
}

// NewForwarder loads the mapping and returns the handler. A mapping file
// that cannot be loaded fails here, when the function starts, rather than
// at every run.
func NewForwarder(cfg ForwardConfig, secrets *SecretReader, log *slog.Logger, userAgent string) (*Forwarder, error) {
	mcfg := mapping.DefaultConfig()
	if cfg.MappingFile != "" {
		var err error
		if mcfg, err = mapping.LoadConfig(cfg.MappingFile); err != nil {
			return nil, fmt.Errorf("mapping file %q (%s): %w", cfg.MappingFile, EnvMapping, err)
		}
	}
	mapper, err := mapping.New(mcfg)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return &Forwarder{cfg: cfg, mapper: mapper, secrets: secrets, log: log, userAgent: userAgent}, nil
}

// RunResult is the response of a forward invocation: the counts of
// forward.Report and the run's duration.
type RunResult struct {
	Received   int   `json:"received"`
	Deleted    int   `json:"deleted"`
	Released   int   `json:"released"`
	Poison     int   `json:"poison"`
	Delivered  int   `json:"delivered"`
	Skipped    int   `json:"skipped"`
	Rejected   int   `json:"rejected"`
	Requests   int   `json:"requests"`
	Retries    int   `json:"retries"`
	DurationMS int64 `json:"duration_ms"`
}

func newRunResult(r forward.Report, d time.Duration) RunResult {
	return RunResult{
		Received: r.Received, Deleted: r.Deleted, Released: r.Released, Poison: r.Poison,
		Delivered: r.Delivered, Skipped: r.Skipped, Rejected: r.Rejected,
		Requests: r.Requests, Retries: r.Retries, DurationMS: d.Milliseconds(),
	}
}

// Handle drains the queue once. It ignores the event, which is EventBridge's
// scheduled event or anything a person invokes the function with.
//
// It returns an error when the run failed, including when Iterable stayed
// unavailable past the retry budget (forward.ErrDestinationUnavailable). The
// run has then released its messages for the next scheduled run, and the
// deployment turns off Lambda's retries, so an outage costs one failed
// invocation per schedule period rather than a loop of retries.
func (f *Forwarder) Handle(ctx context.Context, _ json.RawMessage) (RunResult, error) {
	start := time.Now()
	report, err := f.run(ctx)
	result := newRunResult(report, time.Since(start))
	attrs := append(report.LogAttrs(), "duration_ms", result.DurationMS)
	// aws-lambda-go prints a returned error as plain text. This line adds
	// the run's counts as JSON fields that Logs Insights can query.
	switch {
	case err == nil:
		f.log.Info("forward run finished", attrs...)
		return result, nil
	case errors.Is(err, forward.ErrDestinationUnavailable):
		f.log.Error("forward run stopped: Iterable is unavailable; messages kept for the next run",
			append(attrs, "error", err)...)
		return result, fmt.Errorf("forward run stopped, messages kept for the next run: %w", err)
	}
	f.log.Error("forward run failed", append(attrs, "error", err)...)
	return result, fmt.Errorf("forward run failed: %w", err)
}

// run opens the queue and the Iterable client and runs the forwarder once.
func (f *Forwarder) run(ctx context.Context) (forward.Report, error) {
	key, err := f.secrets.Read(ctx, f.cfg.IterableKey)
	if err != nil {
		return forward.Report{}, fmt.Errorf("Iterable API key: %w", err)
	}
	client, err := iterable.NewClient(iterable.ClientOptions{
		BaseURL:           f.cfg.IterableURL,
		APIKey:            key,
		RequestsPerSecond: f.cfg.Rate,
		UserAgent:         f.userAgent,
	})
	if err != nil {
		return forward.Report{}, err
	}
	q, err := sqs.Open(ctx, f.cfg.QueueURL, queue.Options{})
	if err != nil {
		return forward.Report{}, fmt.Errorf("open queue: %w", err)
	}
	defer q.Close()

	opts := forward.Options{
		MaxEvents:   f.cfg.BatchEvents,
		Visibility:  f.cfg.Visibility,
		RetryBudget: f.cfg.RetryBudget,
		Logger:      f.log.With("component", "forward"),
	}
	if deadline, ok := ctx.Deadline(); ok {
		stop, maxRunTime := runLimits(time.Now(), deadline, f.cfg.RetryBudget)
		opts.MaxRunTime = maxRunTime
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, stop)
		defer cancel()
	}
	return forward.New(q, nil, f.mapper, client, opts).Run(ctx)
}

// runLimits fits a run into the time before the function's deadline. The
// run's context ends at stop, early enough for the release and the final
// delete. Receiving ends after maxRunTime, early enough that the last
// request can use every retry of the retry budget, with each attempt
// timing out, before stop. When the function's timeout is too short for
// that, receiving ends halfway to stop.
func runLimits(now, deadline time.Time, retryBudget time.Duration) (stop time.Time, maxRunTime time.Duration) {
	remaining := deadline.Sub(now)
	stop = deadline.Add(-min(cleanupTime, remaining/4))
	available := stop.Sub(now)
	lastRequest := retryBudget + time.Duration(forward.DefaultMaxAttempts)*iterable.DefaultTimeout
	return stop, max(available-lastRequest, available/2)
}
