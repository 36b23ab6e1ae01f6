package ingest

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// throttledLog logs a repeated failure at most once per interval. Each line
// carries, under the key "count", the number of failures since the previous
// line, this one included.
type throttledLog struct {
	logger   *slog.Logger
	level    slog.Level
	message  string
	interval time.Duration
	now      func() time.Time

	failing atomic.Bool // a failure was recorded since the last recovery

	mu         sync.Mutex
	lastLogged time.Time
	held       int64 // failures since lastLogged that were not logged
}

func newThrottledLog(logger *slog.Logger, level slog.Level, message string, interval time.Duration) *throttledLog {
	return &throttledLog{
		logger:   logger,
		level:    level,
		message:  message,
		interval: interval,
		now:      time.Now,
	}
}

// failure records one failure and logs it with attrs unless a line was
// logged less than the interval ago.
func (t *throttledLog) failure(ctx context.Context, attrs ...slog.Attr) {
	t.failing.Store(true)
	now := t.now()

	t.mu.Lock()
	if !t.lastLogged.IsZero() && now.Sub(t.lastLogged) < t.interval {
		t.held++
		t.mu.Unlock()
		return
	}
	count := t.held + 1
	t.held = 0
	t.lastLogged = now
	t.mu.Unlock()

	attrs = append(attrs, slog.Int64("count", count))
	t.logger.LogAttrs(ctx, t.level, t.message, attrs...)
}

// recovered logs message at Info level when failures were recorded since
// the last recovery, with the number of failures not yet logged under
// "held_count", and resets the interval. Without failures it does nothing
// and takes no lock.
func (t *throttledLog) recovered(ctx context.Context, message string) {
	if !t.failing.Load() {
		return
	}
	t.mu.Lock()
	if !t.failing.Swap(false) {
		t.mu.Unlock()
		return
	}
	held := t.held
	t.held = 0
	t.lastLogged = time.Time{}
	t.mu.Unlock()

	t.logger.LogAttrs(ctx, slog.LevelInfo, message, slog.Int64("held_count", held))
}
