package forward

import (
	"context"
	"fmt"
)

// deleteBatch is the number of deletes sent together, as in SQS's
// DeleteMessageBatch.
const deleteBatch = 10

// flushDeletes records the rejections of resolved messages and then deletes
// those messages in multiples of ten, or all of them when force is set, so
// that an engine with SQS's batch limit sends only full delete batches. The
// writes run on a context detached from cancellation, so a shutdown during
// a run does not lose the acknowledgement of delivered events.
func (r *run) flushDeletes(force bool) {
	n := len(r.toDelete)
	if !force {
		n -= n % deleteBatch
	}
	if n == 0 {
		return
	}
	batch := r.toDelete[:n:n]
	r.toDelete = r.toDelete[n:]
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDeleteTimeout)
	defer cancel()

	if err := r.recordRejections(ctx, batch); err != nil {
		// Without the record the events would vanish, so the messages stay
		// in flight and come back after their visibility timeout.
		r.deleteErr = fmt.Errorf("record rejected events: %w", err)
		r.log.Error("recording rejected events failed; their messages will be retried", "messages", len(batch), "error", err)
		return
	}
	receipts := make([]string, len(batch))
	for i, h := range batch {
		receipts[i] = h.msg.Receipt
	}
	if err := r.f.queue.Delete(ctx, receipts); err != nil {
		r.deleteErr = fmt.Errorf("delete: %w", err)
		r.log.Error("deleting delivered messages failed; they will be delivered again, which updates the same events by id",
			"messages", len(batch), "error", err)
		return
	}
	r.report.Deleted += len(batch)
	r.forget(batch)
}

func (r *run) recordRejections(ctx context.Context, batch []*heldMessage) error {
	var all = batch[0].rejections[:0:0]
	for _, h := range batch {
		all = append(all, h.rejections...)
	}
	if len(all) == 0 {
		return nil
	}
	if r.f.rejects == nil {
		for _, rej := range all {
			r.log.Warn("event rejected", "message_id", rej.MessageID, "event_id", rej.EventID,
				"event_name", rej.EventName, "reason", rej.Reason)
		}
		return nil
	}
	return r.f.rejects.RecordRejected(ctx, all)
}

// releaseAll makes every unresolved held message visible again without
// counting this receive, for the next run.
func (r *run) releaseAll() {
	var receipts []string
	var released []*heldMessage
	for _, h := range r.held {
		if !h.done {
			receipts = append(receipts, h.msg.Receipt)
			released = append(released, h)
		}
	}
	if len(receipts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDeleteTimeout)
	defer cancel()
	if err := r.f.queue.Release(ctx, receipts); err != nil {
		r.log.Error("releasing messages failed; they come back after their visibility timeout", "messages", len(receipts), "error", err)
		return
	}
	r.report.Released += len(receipts)
	r.forget(released)
}

// forget drops messages from the held list once they are deleted or
// released.
func (r *run) forget(gone []*heldMessage) {
	drop := make(map[*heldMessage]bool, len(gone))
	for _, h := range gone {
		drop[h] = true
	}
	kept := r.held[:0]
	for _, h := range r.held {
		if !drop[h] {
			kept = append(kept, h)
		}
	}
	r.held = kept
}
