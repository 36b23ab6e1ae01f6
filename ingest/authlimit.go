package ingest

import (
	"net/netip"
	"sync"
	"time"
)

// Defaults of the failed-authentication limit.
const (
	DefaultAuthFailureLimit  = 20
	DefaultAuthFailureWindow = time.Minute
	// maxTrackedClients bounds the memory of the limiter. At an estimated
	// 100 bytes per client (map entry and window), that is about 10 MB.
	maxTrackedClients = 100_000
)

// failureLimiter counts failed authentications per client address in fixed
// windows. Once a client reaches the limit, it is blocked until its window
// ends, whatever key it sends. IPv6 clients are counted per /64, because
// one host usually controls a whole /64.
type failureLimiter struct {
	limit  int
	window time.Duration
	max    int // tracked clients
	now    func() time.Time

	mu        sync.Mutex
	clients   map[netip.Addr]*failureWindow
	lastSweep time.Time
}

// failureWindow is one client's count of failures since start.
type failureWindow struct {
	start time.Time
	count int
}

func newFailureLimiter(limit int, window time.Duration) *failureLimiter {
	return &failureLimiter{
		limit:   limit,
		window:  window,
		max:     maxTrackedClients,
		now:     time.Now,
		clients: map[netip.Addr]*failureWindow{},
	}
}

// limiterKey returns the address under which a client's failures count.
func limiterKey(addr netip.Addr) netip.Addr {
	if addr.Is6() && !addr.Is4In6() {
		prefix, err := addr.WithZone("").Prefix(64)
		if err == nil {
			return prefix.Addr()
		}
	}
	return addr.Unmap()
}

// blocked reports whether addr has reached the limit in its current window
// and, if so, how long until the window ends.
func (l *failureLimiter) blocked(addr netip.Addr) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.clients[limiterKey(addr)]
	if !ok || w.count < l.limit {
		return 0, false
	}
	left := w.start.Add(l.window).Sub(l.now())
	if left <= 0 {
		return 0, false
	}
	return left, true
}

// fail records a failed authentication from addr. It returns false when
// the failure could not be recorded because the table of clients is full
// even after dropping the ended windows.
func (l *failureLimiter) fail(addr netip.Addr) bool {
	key := limiterKey(addr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= l.max {
			l.dropEnded(now)
			if len(l.clients) >= l.max {
				return false
			}
		}
		w = &failureWindow{start: now}
		l.clients[key] = w
	}
	if now.Sub(w.start) >= l.window {
		w.start, w.count = now, 0
	}
	w.count++
	return true
}

// dropEnded removes the clients whose window has ended. It scans the table
// at most ten times per window, so that a full table does not make every
// failure cost a scan. The caller holds l.mu.
func (l *failureLimiter) dropEnded(now time.Time) {
	if now.Sub(l.lastSweep) < l.window/10 {
		return
	}
	l.lastSweep = now
	for key, w := range l.clients {
		if now.Sub(w.start) >= l.window {
			delete(l.clients, key)
		}
	}
}
