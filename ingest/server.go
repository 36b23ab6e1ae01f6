package ingest

import (
	"log/slog"
	"net/http"
	"time"
)

// Timeouts and limits of the server that NewServer returns.
const (
	ServerReadHeaderTimeout = 5 * time.Second
	// ServerReadTimeout bounds the whole request, body included, so a
	// sender that trickles its body is cut off.
	ServerReadTimeout    = 30 * time.Second
	ServerWriteTimeout   = 30 * time.Second
	ServerIdleTimeout    = 2 * time.Minute
	ServerMaxHeaderBytes = 64 << 10
)

// NewServer returns an HTTP server for h on addr (host:port) with the
// timeouts above. The server's own errors, such as TLS handshake failures,
// go to slog.Default at Warn level.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ServerReadHeaderTimeout,
		ReadTimeout:       ServerReadTimeout,
		WriteTimeout:      ServerWriteTimeout,
		IdleTimeout:       ServerIdleTimeout,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
}
