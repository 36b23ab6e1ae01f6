package sqlite

import (
	"context"
	"testing"

	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/queuetest"
)

// openTestQueue opens a queue in dir and closes it when the test ends.
func openTestQueue(t testing.TB, dir string, opts queue.Options) *Queue {
	t.Helper()
	q, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t testing.TB, opts queue.Options) queue.Queue {
		return openTestQueue(t, t.TempDir(), opts)
	})
}
