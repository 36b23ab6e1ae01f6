package iterabletest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Bodies of faults that stand in for infrastructure in front of Iterable,
// which does not respond in Iterable's JSON shape.
const (
	// ServiceUnavailablePage is an HTML 503 page as a load balancer sends.
	ServiceUnavailablePage = "<!DOCTYPE html>\n" +
		"<html><head><title>503 Service Temporarily Unavailable</title></head>\n" +
		"<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n"
	// BadGatewayJSON is the 502 body an API gateway sends.
	BadGatewayJSON = `{"message":"Bad Gateway"}`
)

// Fault is a programmed misbehaviour of POST /api/events/trackBulk. It acts
// before authentication, as a proxy or outage in front of Iterable would.
// A Fault with only Latency delays the request, which then runs normally.
type Fault struct {
	// Status, when non-zero, is sent with Body and Header instead of
	// running the request.
	Status int
	// Body is the response body. Its Content-Type is inferred from the
	// first character ('{' JSON, '<' HTML, else plain text) unless Header
	// sets one.
	Body   string
	Header http.Header
	// Latency is added before the response or before the normal handling.
	Latency time.Duration
	// Hang holds the request without a response until the client gives up
	// or the Server closes.
	Hang bool
	// Reset closes the connection with a TCP reset instead of responding.
	Reset bool
	// Count is how many requests the fault applies to. Zero means every
	// request until ClearFaults.
	Count int
	// Fraction, when between 0 and 1, is the probability that the fault
	// applies to a request. Zero means every request.
	Fraction float64
}

// activeFault is an injected Fault with its remaining count.
type activeFault struct {
	Fault
	remaining int
}

// InjectFault adds f after the faults already injected. For each request
// the first fault that applies is used. It returns an error for a fault
// that cannot be served.
func (s *Server) InjectFault(f Fault) error {
	switch {
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("iterabletest: invalid fault status %d: expected 100 to 599", f.Status)
	case f.Hang && f.Reset:
		return errors.New("iterabletest: invalid fault: Hang and Reset exclude each other")
	case (f.Hang || f.Reset) && f.Status != 0:
		return errors.New("iterabletest: invalid fault: Hang and Reset send no status")
	case f.Count < 0:
		return fmt.Errorf("iterabletest: invalid fault count %d: must not be negative", f.Count)
	case f.Fraction < 0 || f.Fraction > 1:
		return fmt.Errorf("iterabletest: invalid fault fraction %g: expected 0 to 1", f.Fraction)
	case f.Latency < 0:
		return fmt.Errorf("iterabletest: invalid fault latency %s: must not be negative", f.Latency)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &activeFault{Fault: f, remaining: f.Count})
	return nil
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// nextFault returns the fault for the current request and uses up one of
// its count.
func (s *Server) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Fraction > 0 && f.Fraction < 1 && s.rng.Float64() >= f.Fraction {
			continue
		}
		if f.Count > 0 {
			f.remaining--
			if f.remaining == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// serveFault acts out f and reports whether it produced the outcome of the
// request, so normal handling must not run. A hang, or a latency cut short
// by the client or by Close, aborts the handler, which closes the
// connection without a response.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if !s.sleep(r.Context(), f.Latency) {
		// Close the connection, so a client released by Close gets no
		// response rather than an empty 200.
		panic(http.ErrAbortHandler)
	}
	switch {
	case f.Reset:
		resetConnection(w)
		return true
	case f.Hang:
		// Net/http notices a closed connection, and cancels the request
		// context, only once the handler has read the whole body.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		writeFaultResponse(w, f)
		return true
	}
	return false
}

// writeFaultResponse sends the canned status, headers and body of f.
func writeFaultResponse(w http.ResponseWriter, f Fault) {
	for name, values := range f.Header {
		w.Header()[name] = values
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", sniffContentType(f.Body))
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

// sniffContentType guesses the media type of a canned body.
func sniffContentType(body string) string {
	switch trimmed := strings.TrimSpace(body); {
	case strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "["):
		return "application/json"
	case strings.HasPrefix(trimmed, "<"):
		return "text/html; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}

// resetConnection closes the client's connection with a TCP RST. Where the
// connection cannot be hijacked (HTTP/2), it aborts the handler instead,
// which also ends the request without a response.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		// A zero linger makes Close send RST instead of FIN.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
