package ingest

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics contains the Prometheus collectors of one handler.
type metrics struct {
	requests      *prometheus.CounterVec
	canceled      prometheus.Counter
	storedBytes   prometheus.Counter
	storeDuration prometheus.Histogram
	authFailures  *prometheus.CounterVec
}

// Label values of layover_ingest_auth_failures_total.
const (
	authReasonMissing = "missing"
	authReasonInvalid = "invalid"
)

// newMetrics creates the handler's collectors and registers them with reg.
// Registering fails when reg already has collectors of the same names, for
// example from another handler.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "layover_ingest_requests_total",
			Help: "Requests to POST /event-batch by response status code, except canceled ones.",
		}, []string{"code"}),
		canceled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "layover_ingest_canceled_total",
			Help: "Requests to POST /event-batch whose context ended before the response " +
				"(client gone or read deadline passed); they still get a 408 or 503.",
		}),
		storedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "layover_ingest_stored_bytes_total",
			Help: "Bytes of request bodies stored in the queue, after decompression.",
		}),
		storeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "layover_ingest_store_duration_seconds",
			Help:    "Time taken by each queue Send, including failed ones.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms to 8.2 s
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "layover_ingest_auth_failures_total",
			Help: "Requests rejected with 401, by reason: missing or invalid key.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.canceled, m.storedBytes, m.storeDuration, m.authFailures,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}

	// Export the common series at zero so that rate() works from the start.
	for _, code := range []int{200, 400, 401, 403, 413, 503} {
		m.requests.WithLabelValues(strconv.Itoa(code))
	}
	m.authFailures.WithLabelValues(authReasonMissing)
	m.authFailures.WithLabelValues(authReasonInvalid)
	return m, nil
}

// registerInFlight exports the number of POST /event-batch requests that
// hold a slot, as returned by count.
func registerInFlight(reg prometheus.Registerer, count func() int) error {
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "layover_ingest_in_flight_requests",
		Help: "Requests to POST /event-batch being read or stored now; at the maximum, more get 503.",
	}, func() float64 { return float64(count()) })
	if err := reg.Register(gauge); err != nil {
		return fmt.Errorf("register ingest metrics: %w", err)
	}
	return nil
}

// newDefaultRegistry returns a registry with the Go runtime and process
// collectors, for a handler whose Options.Registry is nil.
func newDefaultRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// countRequest counts one response with the given status.
func (m *metrics) countRequest(status int) {
	m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
}
