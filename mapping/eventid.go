package mapping

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/layover-dev/layover/mparticle"
)

// maxIDBytes is Iterable's limit on an event id. An id may contain only
// ASCII letters, digits and hyphens, and must be unique across all custom
// events of the project.
const maxIDBytes = 512

// Prefixes of the ids that Layover builds, which keep the three kinds apart.
// A source_message_id used as it is could start with one of them only if it
// is not a UUID, because "m" is not a hex digit.
const (
	prefixEventID   = "mpe-" // from event_id
	prefixHashedID  = "mps-" // hash of a source_message_id Iterable would reject
	prefixContentID = "mph-" // hash of the event's content
)

// eventID returns a deterministic Iterable id, so a redelivered event
// updates the stored one instead of adding a copy. It uses, in order:
//   - source_message_id, trimmed, as it is when it is a UUID or other text
//     of letters, digits and hyphens up to 512 bytes. This is the id the
//     native connection sends, so a custom event sent by both upserts into
//     one. Other text is replaced by its SHA-256.
//   - event_id in decimal, with the minus sign written as "n".
//   - a SHA-256 of mpid, event type, name, timestamp and the raw data.
func eventID(b *mparticle.Batch, e *mparticle.Event) string {
	if id := strings.TrimSpace(e.SourceMessageID); id != "" {
		if len(id) <= maxIDBytes && isIDText(id) {
			return id
		}
		sum := sha256.Sum256([]byte(id))
		return prefixHashedID + hex.EncodeToString(sum[:])
	}
	if e.EventID.Valid {
		text := strconv.FormatInt(e.EventID.Value, 10)
		if strings.HasPrefix(text, "-") {
			text = "n" + text[1:]
		}
		return prefixEventID + text
	}
	return prefixContentID + contentHash(b, e)
}

// isIDText reports whether id contains only the characters Iterable allows.
func isIDText(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// contentHash returns the hex SHA-256 of the parts that identify an event
// without ids. Each part is length-prefixed so that no two different part
// lists hash the same bytes. Two events equal in all parts get one id.
func contentHash(b *mparticle.Batch, e *mparticle.Event) string {
	data := []byte(e.Data)
	var compact bytes.Buffer
	if json.Compact(&compact, data) == nil {
		data = compact.Bytes()
	}
	h := sha256.New()
	for _, part := range [][]byte{
		[]byte(b.MPID.String()),
		[]byte(e.Type),
		[]byte(firstNonBlank(e.EventName, e.ScreenName)),
		[]byte(e.TimestampMs.String()),
		data,
	} {
		var length [8]byte
		binary.BigEndian.PutUint64(length[:], uint64(len(part)))
		h.Write(length[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// createdAt returns the event time in whole Unix seconds, which Iterable's
// own integrations send. It falls back to the batch time, and returns 0
// when neither is a positive millisecond time, so Iterable sets the time
// it receives the event.
func createdAt(b *mparticle.Batch, e *mparticle.Event) int64 {
	for _, ms := range []mparticle.Int64{e.TimestampMs, b.TimestampMs} {
		if ms.Valid && ms.Value >= 1000 {
			return ms.Value / 1000
		}
	}
	return 0
}
