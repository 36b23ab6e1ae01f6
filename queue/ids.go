package queue

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// NewReceipt returns a random receipt handle with at least 128 bits of
// entropy, enough that two receives never get the same receipt in practice.
func NewReceipt() string {
	return rand.Text()
}

// idClock keeps message ids increasing within a process, even when several
// ids are made in the same millisecond or the wall clock steps back.
type idClock struct {
	mu      sync.Mutex
	millis  int64
	counter uint16
}

// messageIDClock is the clock of NewMessageID.
var messageIDClock idClock

// maxIDCounter is the largest value of the 12-bit rand_a field of a UUIDv7.
const maxIDCounter = 1<<12 - 1

// NewMessageID returns a UUIDv7 (RFC 9562) string. Its first 48 bits are the
// Unix time in milliseconds, and the 12 bits after the version count the ids
// made in the same millisecond. Ids made by one process therefore sort in the
// order they were made, as strings and as bytes.
func NewMessageID() string {
	millis, counter := messageIDClock.next(time.Now().UnixMilli())

	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24
	b[0] = byte(millis >> 40)
	b[1] = byte(millis >> 32)
	b[2] = byte(millis >> 24)
	b[3] = byte(millis >> 16)
	b[4] = byte(millis >> 8)
	b[5] = byte(millis)
	b[6] = 0x70 | byte(counter>>8) // version 7
	b[7] = byte(counter)
	b[8] = 0x80 | b[8]&0x3f // RFC 9562 variant

	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// next returns the millisecond and counter of the next id. When the counter
// of the current millisecond runs out, the id borrows the next millisecond,
// as RFC 9562 section 6.2 allows.
func (c *idClock) next(now int64) (int64, uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()

	switch {
	case now > c.millis:
		c.millis = now
		c.counter = 0
	case c.counter < maxIDCounter:
		c.counter++
	default:
		c.millis++
		c.counter = 0
	}
	return c.millis, c.counter
}
