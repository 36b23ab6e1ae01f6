package reliability

import (
	"context"
	"sync"
	"time"

	"github.com/layover-dev/layover/queue"
)

// queueSpy is a queue.Queue that remembers the current receipt of every
// message, so the destination can tell a needed redelivery (the message
// was received again) from a duplicate.
type queueSpy struct {
	queue.Queue

	mu       sync.Mutex
	receipt  map[string]string // message id -> receipt of its latest receive, "" once released
	message  map[string]string // receipt -> message id
	maxCount int               // highest ReceiveCount the queue returned
}

func newQueueSpy(q queue.Queue) *queueSpy {
	return &queueSpy{
		Queue:   q,
		receipt: map[string]string{},
		message: map[string]string{},
	}
}

// Receive receives from the queue and records the receipts.
func (s *queueSpy) Receive(ctx context.Context, n int, visibility time.Duration) ([]queue.Message, error) {
	msgs, err := s.Queue.Receive(ctx, n, visibility)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.receipt[m.ID] = m.Receipt
		s.message[m.Receipt] = m.ID
		s.maxCount = max(s.maxCount, m.ReceiveCount)
	}
	return msgs, err
}

// Release releases messages and records that their receipts are stale.
func (s *queueSpy) Release(ctx context.Context, receipts []string) error {
	err := s.Queue.Release(ctx, receipts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range receipts {
		if id := s.message[r]; id != "" && s.receipt[id] == r {
			s.receipt[id] = ""
		}
	}
	return nil
}

// receiptOf returns the current receipt of a message.
func (s *queueSpy) receiptOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.receipt[id]
}

// maxReceiveCount returns the highest receive count that the queue
// reported for any message.
func (s *queueSpy) maxReceiveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxCount
}
