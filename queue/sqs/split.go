package sqs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/layover-dev/layover/queue"
)

// eventsField is the top-level field of an mParticle batch that contains its
// events.
const eventsField = "events"

// planParts returns the messages to send for body so that each fits in limit
// bytes as SQS counts them. A body that fits is one message. A larger body
// is divided by its events array into several batches, each with the other
// top-level fields of body and a run of its events, byte for byte. With
// force set, every part is base64-encoded.
//
// It returns an error wrapping queue.ErrTooLarge when body cannot be
// divided: it is not a JSON object with an events array, or one event with
// the other fields is larger than limit by itself. Such a body can never be
// stored in this queue, so the caller may respond 413 Content Too Large.
// Nothing is sent in that case, because planParts runs before any send.
func planParts(body []byte, limit int, force bool) ([]outgoing, error) {
	whole := encodeBody(body, force)
	if whole.size() <= limit {
		return []outgoing{whole}, nil
	}
	batch, err := parseBatch(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds the limit of %d bytes "+
			"and cannot be split: %w", queue.ErrTooLarge, len(body), limit, err)
	}
	runs, err := batch.packEvents(limit, force)
	if err != nil {
		return nil, err
	}
	parts := make([]outgoing, 0, len(runs))
	for _, run := range runs {
		parts = append(parts, encodeBody(batch.render(run), force))
	}
	return parts, nil
}

// splitBatch is an mParticle batch parsed into its top-level fields, in their
// order in the body, with the events array parsed into its elements.
type splitBatch struct {
	fields      []field
	eventsIndex int // index of the events field in fields
	events      []json.RawMessage
}

type field struct {
	key   []byte // the key as a JSON string
	value json.RawMessage
}

// parseBatch parses body as a JSON object with an events array.
func parseBatch(body []byte) (*splitBatch, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("body is not a JSON object")
	}
	batch := &splitBatch{eventsIndex: -1}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("parse body: %w", err)
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("parse field %q: %w", key, err)
		}
		if key == eventsField {
			if batch.eventsIndex >= 0 {
				return nil, errors.New("body has two events fields")
			}
			if err := json.Unmarshal(value, &batch.events); err != nil || batch.events == nil {
				return nil, errors.New("events field is not an array")
			}
			batch.eventsIndex = len(batch.fields)
		}
		batch.fields = append(batch.fields, field{key: quoteKey(key), value: value})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("parse body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("body has data after the JSON object")
	}
	if batch.eventsIndex < 0 {
		return nil, errors.New("body has no events field")
	}
	return batch, nil
}

// quoteKey returns key as a JSON string without escaping <, > and &, which
// json.Marshal would escape.
func quoteKey(key string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(key) // encoding a string cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// eventRun is a run of consecutive events, events[start:end].
type eventRun struct{ start, end int }

// packEvents divides the events into runs so that each run rendered with the
// other fields fits in limit bytes as SQS counts them, filling each run
// before starting the next.
func (b *splitBatch) packEvents(limit int, force bool) ([]eventRun, error) {
	if len(b.events) == 0 {
		return nil, fmt.Errorf("%w: the fields other than events exceed the limit of %d bytes",
			queue.ErrTooLarge, limit)
	}
	base := b.render(eventRun{})
	baseEncoded := force || !validBody(base)
	var runs []eventRun
	run := eventRun{}
	size, encoded := len(base), baseEncoded
	for i, event := range b.events {
		eventValid := validBody(event)
		eventEncoded := encoded || !eventValid
		// A comma precedes every event of a run but the first.
		if i > run.start && encodedSize(size+1+len(event), eventEncoded) > limit {
			runs = append(runs, run)
			run = eventRun{start: i}
			size, encoded = len(base), baseEncoded
			eventEncoded = encoded || !eventValid
		}
		grown := size + len(event)
		if i > run.start {
			grown++
		}
		if encodedSize(grown, eventEncoded) > limit {
			return nil, fmt.Errorf("%w: event %d of %d bytes does not fit in one message of %d bytes",
				queue.ErrTooLarge, i, len(event), limit)
		}
		run.end, size, encoded = i+1, grown, eventEncoded
	}
	return append(runs, run), nil
}

// render returns the batch as JSON with only the events of run.
func (b *splitBatch) render(run eventRun) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range b.fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(f.key)
		buf.WriteByte(':')
		if i != b.eventsIndex {
			buf.Write(f.value)
			continue
		}
		buf.WriteByte('[')
		for j, event := range b.events[run.start:run.end] {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(event)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
