package postgres

import (
	"testing"

	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/queuetest"
)

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t testing.TB, opts queue.Options) queue.Queue {
		return openTest(t, opts)
	})
}
