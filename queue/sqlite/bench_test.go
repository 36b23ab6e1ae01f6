package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layover-dev/layover/queue"
)

// benchmarkBodies returns n mParticle-like batches of 5 to 10 KB each.
func benchmarkBodies(n int) [][]byte {
	rng := rand.New(rand.NewPCG(7, 11))
	bodies := make([][]byte, n)
	for i := range bodies {
		target := 5_000 + rng.IntN(5_000)
		var b strings.Builder
		fmt.Fprintf(&b, `{"events":[`)
		for e := 0; b.Len() < target-200; e++ {
			if e > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"data":{"event_name":"screen %d","timestamp_unixtime_ms":%d,`+
				`"source_message_id":"%016x","custom_attributes":{"plan":"pro","step":"%d"}},"event_type":"screen_view"}`,
				rng.IntN(50), 1764800000000+rng.Int64N(1e9), rng.Uint64(), e)
		}
		fmt.Fprintf(&b, `],"mpid":"%d","environment":"production"}`, rng.Int64())
		bodies[i] = []byte(b.String())
	}
	return bodies
}

// BenchmarkSendParallel measures Send from 16 goroutines per CPU, as
// concurrent webhook requests call it, with and without group commit.
func BenchmarkSendParallel(b *testing.B) {
	bodies := benchmarkBodies(64)
	for _, mode := range []struct {
		name     string
		maxBatch int
	}{
		{"group_commit", defaultMaxBatchMessages},
		{"transaction_per_send", 1},
	} {
		b.Run(mode.name, func(b *testing.B) {
			q, err := open(context.Background(), b.TempDir(), queue.Options{}, mode.maxBatch)
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()

			b.SetParallelism(16)
			b.SetBytes(7_500)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(bodies))
				for pb.Next() {
					if _, err := q.Send(context.Background(), bodies[i%len(bodies)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.StopTimer()
			if commits := q.sendCommits.Load(); commits > 0 {
				b.ReportMetric(float64(b.N)/float64(commits), "sends/commit")
			}
		})
	}
}

// BenchmarkReceiveDelete measures draining a queue as the forwarder does:
// receive 10, delete 10. One op is one message.
func BenchmarkReceiveDelete(b *testing.B) {
	q, err := Open(context.Background(), b.TempDir(), queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	fillQueue(b, q, b.N, benchmarkBodies(64))

	b.ResetTimer()
	received := 0
	for received < b.N {
		msgs, err := q.Receive(context.Background(), queue.MaxReceiveBatch, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) == 0 {
			b.Fatalf("queue empty after %d of %d messages", received, b.N)
		}
		receipts := make([]string, len(msgs))
		for i, m := range msgs {
			receipts[i] = m.Receipt
		}
		if err := q.Delete(context.Background(), receipts); err != nil {
			b.Fatal(err)
		}
		received += len(msgs)
	}
}

// fillQueue sends n bodies from 32 goroutines.
func fillQueue(b *testing.B, q *Queue, n int, bodies [][]byte) {
	b.Helper()
	var wg sync.WaitGroup
	const senders = 32
	for s := range senders {
		wg.Go(func() {
			for i := s; i < n; i += senders {
				if _, err := q.Send(context.Background(), bodies[i%len(bodies)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
