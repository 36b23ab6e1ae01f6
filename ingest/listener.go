package ingest

import (
	"net"
	"sync"
)

// DefaultMaxConnections is the connection limit that layover serve applies
// with LimitConnections unless configured otherwise.
const DefaultMaxConnections = 1024

// LimitConnections returns a listener that keeps at most n accepted
// connections open at once. Accept waits for a connection to close before
// it takes the next one from ln, so excess clients wait in the kernel's
// listen backlog and cost the process no goroutine or buffer. The server's
// header and read timeouts bound how long a silent client holds a slot.
func LimitConnections(ln net.Listener, n int) net.Listener {
	return &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, n),
		closed:   make(chan struct{}),
	}
}

type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept waits for a free slot, then accepts a connection that frees the
// slot when it is closed.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	conn, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: conn, release: func() { <-l.slots }}, nil
}

// Close closes the listener and ends an Accept that waits for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// slotConn is a connection that frees its listener slot once, on the first
// Close.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes a TCP connection. net/http uses it to send an
// error response, such as 431, and let the client read it before the close,
// which would otherwise reset the connection while the client still sends.
func (c *slotConn) CloseWrite() error {
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		return tcp.CloseWrite()
	}
	return c.Conn.Close()
}
