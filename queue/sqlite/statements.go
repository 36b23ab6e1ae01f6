package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// The statements that Send, Receive, Delete and Release run.
// modernc.org/sqlite compiles the SQL of each tx.ExecContext call anew,
// and pprof of the forwarder benchmark showed that compilation at 7 % of
// the forwarder's CPU, so these are prepared once per queue.
const (
	querySelectVisible = `
SELECT m.seq, m.id, b.body, m.enqueued_at, m.receive_count
FROM messages AS m JOIN message_bodies AS b ON b.seq = m.seq
WHERE m.visible_at <= ?
ORDER BY m.visible_at, m.seq
LIMIT ?`
	queryMarkReceived = `
UPDATE messages SET receive_count = receive_count + 1, receipt = ?, visible_at = ?
WHERE seq = ?`
	queryDeleteReceipt  = `DELETE FROM messages WHERE receipt = ?`
	queryReleaseReceipt = `
UPDATE messages
SET visible_at = ?, receive_count = max(receive_count - 1, 0), receipt = NULL
WHERE receipt = ?`
	queryInsertMessage = `
INSERT INTO messages (id, enqueued_at, visible_at) VALUES (?, ?, ?)`
	queryInsertBody       = `INSERT INTO message_bodies (seq, body) VALUES (?, ?)`
	queryExpireMessages   = `DELETE FROM messages WHERE enqueued_at <= ?`
	queryExpireDead       = `DELETE FROM dead_messages WHERE enqueued_at <= ?`
	queryExpireRejections = `DELETE FROM rejections WHERE at <= ?`
)

// prepareWriteStmts prepares the hot statements on the write pool, whose
// single connection then keeps them compiled.
func prepareWriteStmts(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt)
	for _, query := range []string{
		querySelectVisible, queryMarkReceived, queryDeleteReceipt, queryReleaseReceipt,
		queryInsertMessage, queryInsertBody, queryExpireMessages, queryExpireDead, queryExpireRejections,
	} {
		stmt, err := db.PrepareContext(ctx, query)
		if err != nil {
			for _, s := range stmts {
				s.Close()
			}
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		stmts[query] = stmt
	}
	return stmts, nil
}

// stmt returns the prepared statement of query for use in tx, which runs
// on the write connection, so database/sql reuses the statement compiled
// there. query must be one of the constants above.
func (q *Queue) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	return tx.StmtContext(ctx, q.writeStmts[query])
}
