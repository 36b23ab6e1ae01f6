package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is the endpoint that a load run POSTs webhook bodies to.
type target struct {
	url           string
	authorization string // value of the Authorization header, or ""
}

// loadResult is the measurement of one load run. Latencies are sorted.
type loadResult struct {
	Requests  int           // requests that got 200 within the window
	Errors    int           // requests that got another status or no response
	Window    time.Duration // length of the measured window
	Latencies []time.Duration
	FirstErr  error
}

// throughput returns the requests per second that got 200.
func (r loadResult) throughput() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Window.Seconds()
}

// percentile returns the latency that p percent of the requests did not
// exceed (nearest rank over every recorded sample), or 0 without samples.
func (r loadResult) percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	// The epsilon keeps 99.9 % of 1000 at rank 999 despite float rounding.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	return r.Latencies[min(max(rank, 1), n)-1]
}

// merge pools two results of the same target.
func (r loadResult) merge(o loadResult) loadResult {
	out := loadResult{
		Requests:  r.Requests + o.Requests,
		Errors:    r.Errors + o.Errors,
		Window:    r.Window + o.Window,
		Latencies: append(slices.Clone(r.Latencies), o.Latencies...),
		FirstErr:  r.FirstErr,
	}
	if out.FirstErr == nil {
		out.FirstErr = o.FirstErr
	}
	slices.Sort(out.Latencies)
	return out
}

// loadGenerator sends webhook bodies over keep-alive connections.
type loadGenerator struct {
	client *http.Client
	bodies [][]byte
	next   atomic.Uint64 // index of the next body
}

// newLoadGenerator returns a generator that keeps up to conns connections
// open to one host.
func newLoadGenerator(bodies [][]byte, conns int) *loadGenerator {
	transport := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &loadGenerator{
		client: &http.Client{Transport: transport, Timeout: 30 * time.Second},
		bodies: bodies,
	}
}

// close closes the idle connections.
func (g *loadGenerator) close() {
	g.client.CloseIdleConnections()
}

// post sends one body and reads the whole response. It returns an error for
// a failed request or a status other than 200.
func (g *loadGenerator) post(ctx context.Context, t target) error {
	body := g.bodies[g.next.Add(1)%uint64(len(g.bodies))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.authorization != "" {
		req.Header.Set("Authorization", t.authorization)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d", t.url, resp.StatusCode)
	}
	return nil
}

// recorder collects the outcome of the requests of one worker.
type recorder struct {
	latencies []time.Duration
	errors    int
	firstErr  error
}

func (rec *recorder) record(latency time.Duration, err error) {
	if err != nil {
		rec.errors++
		if rec.firstErr == nil {
			rec.firstErr = err
		}
		return
	}
	rec.latencies = append(rec.latencies, latency)
}

// collect merges the recorders into a result for a window of length window.
func collect(recs []*recorder, window time.Duration) loadResult {
	res := loadResult{Window: window}
	for _, rec := range recs {
		res.Latencies = append(res.Latencies, rec.latencies...)
		res.Errors += rec.errors
		if res.FirstErr == nil {
			res.FirstErr = rec.firstErr
		}
	}
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res
}

// closedLoop runs workers that each send one request after the other for
// duration, as fast as the server responds: this finds the maximum
// throughput. A request counts when it started within the window.
func (g *loadGenerator) closedLoop(ctx context.Context, t target, workers int, duration time.Duration) loadResult {
	start := time.Now()
	end := start.Add(duration)
	recs := make([]*recorder, workers)
	var wg sync.WaitGroup
	for i := range recs {
		rec := &recorder{}
		recs[i] = rec
		wg.Go(func() {
			for ctx.Err() == nil {
				began := time.Now()
				if !began.Before(end) {
					return
				}
				err := g.post(ctx, t)
				rec.record(time.Since(began), err)
			}
		})
	}
	wg.Wait()
	return collect(recs, duration)
}

// openLoop sends rate requests per second on a fixed schedule for
// duration, whatever the server's latency, from up to workers concurrent
// requests. Each latency counts from the time the schedule set for the
// request, so the queueing delay of a server that falls behind shows in
// the percentiles (no coordinated omission).
func (g *loadGenerator) openLoop(ctx context.Context, t target, rate float64, workers int,
	duration time.Duration) loadResult {
	total := int(rate * duration.Seconds())
	due := make(chan time.Time, max(total, 1))
	recs := make([]*recorder, workers)
	var wg sync.WaitGroup
	for i := range recs {
		rec := &recorder{}
		recs[i] = rec
		wg.Go(func() {
			for scheduled := range due {
				if ctx.Err() != nil {
					continue
				}
				err := g.post(ctx, t)
				rec.record(time.Since(scheduled), err)
			}
		})
	}

	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for sent := 0; sent < total && ctx.Err() == nil; {
		elapsed := time.Since(start)
		for ; sent < total && time.Duration(sent)*interval <= elapsed; sent++ {
			due <- start.Add(time.Duration(sent) * interval)
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	return collect(recs, duration)
}
