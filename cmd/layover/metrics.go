package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/queue"
)

// forwardMetrics are the forwarder's Prometheus metrics, updated after each
// scheduled run from its report.
type forwardMetrics struct {
	runs        *prometheus.CounterVec
	events      *prometheus.CounterVec
	messages    *prometheus.CounterVec
	requests    prometheus.Counter
	lastSuccess prometheus.Gauge
}

// newRegistry returns the registry served on /metrics, with the Go runtime
// and process collectors and the forwarder's metrics.
func newRegistry() (*prometheus.Registry, *forwardMetrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &forwardMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "layover_forward_runs_total",
			Help: "Forward runs by outcome: ok, unavailable (Iterable kept failing) or error.",
		}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "layover_forward_events_total",
			Help: "Events by outcome: delivered, skipped by the mapping, or rejected.",
		}, []string{"outcome"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "layover_forward_messages_total",
			Help: "Stored batches by outcome: deleted after delivery, empty (deleted, held no event; also counted as deleted), released for a later run, or poison.",
		}, []string{"outcome"}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "layover_forward_trackbulk_requests_total",
			Help: "trackBulk requests sent, retries included.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "layover_forward_last_success_timestamp_seconds",
			Help: "Unix time at which the last forward run ended without an error.",
		}),
	}
	reg.MustRegister(m.runs, m.events, m.messages, m.requests, m.lastSuccess)
	return reg, m
}

// observe records one run's report and outcome.
func (m *forwardMetrics) observe(r forward.Report, err error) {
	switch {
	case err == nil:
		m.runs.WithLabelValues("ok").Inc()
		m.lastSuccess.SetToCurrentTime()
	case errors.Is(err, forward.ErrDestinationUnavailable):
		m.runs.WithLabelValues("unavailable").Inc()
	default:
		m.runs.WithLabelValues("error").Inc()
	}
	m.events.WithLabelValues("delivered").Add(float64(r.Delivered))
	m.events.WithLabelValues("skipped").Add(float64(r.Skipped))
	m.events.WithLabelValues("rejected").Add(float64(r.Rejected))
	m.messages.WithLabelValues("deleted").Add(float64(r.Deleted))
	m.messages.WithLabelValues("empty").Add(float64(r.Empty))
	m.messages.WithLabelValues("released").Add(float64(r.Released))
	m.messages.WithLabelValues("poison").Add(float64(r.Poison))
	m.requests.Add(float64(r.Requests))
}

// queueCollector reports the queue's depth on each scrape of /metrics, so
// that a backlog is visible while serve holds the embedded queue's lock.
type queueCollector struct {
	queue   queue.Queue
	log     *slog.Logger
	visible *prometheus.Desc
	flight  *prometheus.Desc
	dead    *prometheus.Desc
	oldest  *prometheus.Desc
}

func newQueueCollector(q queue.Queue, log *slog.Logger) *queueCollector {
	return &queueCollector{
		queue:   q,
		log:     log,
		visible: prometheus.NewDesc("layover_queue_visible_messages", "Stored batches ready to be forwarded.", nil, nil),
		flight:  prometheus.NewDesc("layover_queue_in_flight_messages", "Stored batches a forward run holds.", nil, nil),
		dead:    prometheus.NewDesc("layover_queue_dead_lettered_messages", "Batches in the dead-letter queue.", nil, nil),
		oldest: prometheus.NewDesc("layover_queue_oldest_message_age_seconds",
			"Age of the oldest stored batch that is not dead-lettered (0 on SQS).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.visible
	ch <- c.flight
	ch <- c.dead
	ch <- c.oldest
}

// Collect implements prometheus.Collector. A failed Stats call reports no
// queue metrics for that scrape; /readyz reports the failure.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.queue.Stats(ctx)
	if err != nil {
		c.log.Debug("queue stats for /metrics failed", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.visible, prometheus.GaugeValue, float64(st.Visible))
	ch <- prometheus.MustNewConstMetric(c.flight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(st.DeadLettered))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, st.OldestAge.Seconds())
}
