package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/layover-dev/layover/queue"
)

// Limits of one group commit. A commit takes the sends that queued up while
// the previous one was syncing, up to these limits.
const (
	defaultMaxBatchMessages = 256
	maxBatchBytes           = 64 << 20
)

// States of a sendRequest. The writer and a Send whose context ends race to
// move a request out of requestPending; the winner decides whether it is
// stored.
const (
	requestPending int32 = iota
	requestTaken
	requestAbandoned
)

// sendRequest is one Send waiting for the writer.
type sendRequest struct {
	id         string
	body       []byte
	enqueuedAt int64
	state      atomic.Int32
	done       chan error // buffered, receives the commit's outcome once
}

// Send stores body and returns its message id once the transaction that
// contains it is synced to disk. It returns queue.ErrTooLarge for a body over
// MaxBodySize. When ctx ends before the writer has taken the body, Send
// returns ctx's error and the body is not stored. When the writer has taken
// it, Send waits for the commit and returns its outcome.
func (q *Queue) Send(ctx context.Context, body []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	if len(body) > MaxBodySize {
		return "", fmt.Errorf("send: body of %d bytes is over the limit of %d bytes: %w",
			len(body), MaxBodySize, queue.ErrTooLarge)
	}
	r := &sendRequest{
		id:         queue.NewMessageID(),
		body:       body,
		enqueuedAt: q.now().UnixMilli(),
		done:       make(chan error, 1),
	}
	if err := q.enqueue(ctx, r); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}

	var err error
	select {
	case err = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(requestPending, requestAbandoned) {
			return "", fmt.Errorf("send: %w", ctx.Err())
		}
		err = <-r.done
	}
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	return r.id, nil
}

// enqueue hands r to the writer. It holds off Close, which closes the
// channel, until r is in it.
func (q *Queue) enqueue(ctx context.Context, r *sendRequest) error {
	release, err := q.acquire()
	if err != nil {
		return err
	}
	defer release()
	select {
	case q.sends <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runWriter stores sends until Close closes the channel and every queued
// send is committed, then closes the syncer's channel. It inserts each send
// into an open transaction as soon as it arrives, and commits that group
// when runSyncer is idle. The inserts of one group thus overlap the sync of
// the last, and every send that arrives meanwhile joins the group.
func (q *Queue) runWriter() {
	defer close(q.committed)
	g := &group{}
	for {
		var r *sendRequest
		if len(g.sends) == 0 {
			var ok bool
			if r, ok = <-q.sends; !ok {
				return
			}
		} else {
			var ok bool
			select {
			case r, ok = <-q.sends: // a waiting send joins the group first
			default:
				select {
				case r, ok = <-q.sends:
				case <-q.syncerIdle:
					q.commitGroup(g)
					continue
				}
			}
			if !ok {
				<-q.syncerIdle
				q.commitGroup(g)
				return
			}
		}
		q.place(g, r)
	}
}

// group is the open transaction of runWriter and the sends stored in it.
type group struct {
	conn          *sql.Conn
	tx            *sql.Tx
	insertMessage *sql.Stmt
	insertBody    *sql.Stmt
	sends         []*sendRequest
	size          int
}

// place stores r in g, first committing g when r would take it past the
// group limits. A send whose context ended before this point is not
// stored.
func (q *Queue) place(g *group, r *sendRequest) {
	if !r.state.CompareAndSwap(requestPending, requestTaken) {
		return
	}
	if len(g.sends) > 0 && (len(g.sends) >= q.maxBatchMessages || g.size+len(r.body) > maxBatchBytes) {
		<-q.syncerIdle
		q.commitGroup(g)
	}
	if err := q.insertSend(g, r); err != nil {
		err = fmt.Errorf("store message: %w", err)
		notify(append(g.sends, r), err)
		g.rollback()
	}
}

// insertSend inserts r into g's transaction, which it begins when g is
// empty.
func (q *Queue) insertSend(g *group, r *sendRequest) error {
	if err := q.syncFailed(); err != nil {
		return err
	}
	// The senders' contexts differ and each waits for the outcome, so the
	// statements run to their end.
	ctx := context.Background()
	if g.tx == nil {
		conn, tx, err := q.beginWrite(ctx, syncNormal)
		if err != nil {
			return err
		}
		g.conn, g.tx = conn, tx
		g.insertMessage = q.stmt(ctx, tx, queryInsertMessage)
		g.insertBody = q.stmt(ctx, tx, queryInsertBody)
	}
	if err := insertOne(ctx, g.insertMessage, g.insertBody, r.id, r.body, r.enqueuedAt); err != nil {
		return err
	}
	g.sends = append(g.sends, r)
	g.size += len(r.body)
	return nil
}

// commitGroup commits g without a sync and hands its sends to runSyncer,
// which the caller has seen idle. When the commit fails, it notifies the
// sends and leaves runSyncer idle.
func (q *Queue) commitGroup(g *group) {
	sends := g.sends
	if err := q.syncFailed(); err != nil {
		// No sync can make the group durable any more, so its senders
		// receive the failure, and the rollback keeps it out of the queue.
		g.rollback()
		notify(sends, err)
		q.syncerIdle <- struct{}{} // runSyncer took no group
		return
	}
	err := g.tx.Commit()
	g.release()
	if err != nil {
		notify(sends, fmt.Errorf("store message: %w", err))
		q.syncerIdle <- struct{}{} // runSyncer took no group
		return
	}
	q.sendCommits.Add(1)
	q.committed <- sends
}

// rollback ends g's transaction, if any, and empties g.
func (g *group) rollback() {
	if g.tx != nil {
		_ = g.tx.Rollback()
	}
	g.release()
}

// release returns g's connection to the pool and empties g.
func (g *group) release() {
	if g.conn != nil {
		_ = g.conn.Close()
	}
	*g = group{}
}

// runSyncer syncs the log for each group that runWriter committed and
// notifies its senders. Before it waits for a group, it puts a token in
// syncerIdle, and runWriter commits only with that token, so one group is
// synced at a time while the next one fills.
//
// After a failed sync every later send fails too, because Linux may drop
// the pages that did not reach the disk and report success on the next
// sync, so no later sync can prove anything durable.
func (q *Queue) runSyncer() {
	defer close(q.writerDone)
	for {
		q.syncerIdle <- struct{}{}
		batch, ok := <-q.committed
		if !ok {
			return
		}
		err := q.syncFailed()
		if err == nil {
			if err = q.log.sync(); err != nil {
				err = fmt.Errorf("%w: %w", errLogSync, err)
				q.syncErr.Store(&err)
				q.logger.Error("syncing the write-ahead log failed, so every later send fails until layover restarts",
					"error", err)
			}
		}
		notify(batch, err)
	}
}

// errLogSync marks a failed sync of the write-ahead log.
var errLogSync = errors.New("sync write-ahead log failed; check the disk and restart layover")

// syncFailed returns the error of the first failed sync, or nil.
func (q *Queue) syncFailed() error {
	if p := q.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

// notify sends err, nil for success, to every send of batch.
func notify(batch []*sendRequest, err error) {
	for _, r := range batch {
		r.done <- err
	}
}

// insertOne stores one message with its body, visible at enqueuedAt. It
// stores a nil body as an empty blob, because the driver binds nil as NULL
// and reads an empty blob back as nil, as Redrive does.
func insertOne(ctx context.Context, insertMessage, insertBody *sql.Stmt, id string, body []byte,
	enqueuedAt int64) error {
	if body == nil {
		body = []byte{}
	}
	res, err := insertMessage.ExecContext(ctx, id, enqueuedAt, enqueuedAt)
	if err != nil {
		return err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = insertBody.ExecContext(ctx, seq, body)
	return err
}
