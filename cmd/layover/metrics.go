package main

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/layover-dev/layover/forward"
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
			Help: "Stored batches by outcome: deleted after delivery, released for a later run, or poison.",
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
	m.messages.WithLabelValues("released").Add(float64(r.Released))
	m.messages.WithLabelValues("poison").Add(float64(r.Poison))
	m.requests.Add(float64(r.Requests))
}
