package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/layover-dev/layover/internal/testenv"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
	sqsengine "github.com/layover-dev/layover/queue/sqs"
)

// sqsTestRegion is the region of every SQS request in these tests. fauxqs
// keeps queues per region, taken from the request signature.
const sqsTestRegion = "us-east-1"

// sqsQueue is a queue pair in the SQS emulator.
type sqsQueue struct {
	client   *sqs.Client
	endpoint string
	url      string
}

// createSQSQueue creates a queue and its dead-letter queue with opts in
// the emulator that the test script started, or skips the test. Cleanup
// deletes both.
func createSQSQueue(t testing.TB, opts queue.Options) *sqsQueue {
	t.Helper()
	endpoint := testenv.SQSEndpoint(t)
	client := sqs.New(sqs.Options{
		Region:       sqsTestRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "layover-e2e-" + strings.ToLower(rand.Text()[:12])
	queueURL, err := sqsengine.CreateQueues(ctx, client, name, opts)
	if err != nil {
		t.Fatalf("create SQS queues %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range []string{name, name + sqsengine.DeadLetterSuffix} {
			out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(n)})
			if err == nil {
				_, err = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
			}
			if err != nil {
				t.Logf("delete SQS queue %s: %v", n, err)
			}
		}
	})
	return &sqsQueue{client: client, endpoint: endpoint, url: queueURL}
}

// env returns the variables that point a layover process at the queue
// through endpoint, with the static credentials that fauxqs accepts.
func (q *sqsQueue) env(endpoint string) []string {
	return []string{
		"LAYOVER_QUEUE=" + q.url,
		"AWS_ENDPOINT_URL_SQS=" + endpoint,
		"AWS_REGION=" + sqsTestRegion,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// queueStats runs layover queue stats and fails the test unless every line
// in want is in its output.
func queueStats(t testing.TB, env []string, when string, want ...string) {
	t.Helper()
	code, out := runLayover(t, env, "queue", "stats")
	if code != 0 {
		t.Fatalf("queue stats %s: exit %d\n%s", when, code, out)
	}
	for _, line := range want {
		if !strings.Contains(out, line) {
			t.Errorf("queue stats %s: want %q\n%s", when, line, out)
		}
	}
}

func TestSQSEndToEndWithDeadLetters(t *testing.T) {
	q := createSQSQueue(t, queue.Options{MaxReceiveCount: 2})
	sim, simURL := startSimulator(t)
	env := testEnv(t.TempDir(), simURL, append(q.env(q.endpoint),
		"LAYOVER_VISIBILITY_TIMEOUT=1s", "LAYOVER_RETRY_BUDGET=500ms")...)

	serve := startServe(t, env)
	for _, name := range []string{"ios-session.json", "android-object-identities.json"} {
		if status, body := post(t, serve.base, webhookKey, sample(t, name)); status != 200 {
			t.Fatalf("POST %s: HTTP %d %s", name, status, body)
		}
	}
	serve.stop(t)
	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("forward: exit %d\n%s", code, out)
	}
	if got := sim.EventCount(iterabletest.DefaultAPIKey); got != 10 {
		t.Errorf("simulator has %d events, want the 10 forwarded events of both samples", got)
	}
	queueStats(t, env, "after forward", "visible:        0", "in flight:      0", "dead-lettered:  0")

	// A body that is not JSON, sent straight to the queue past ingest, fails
	// on every receive.
	const poison = "not a webhook batch {"
	_, err := q.client.SendMessage(t.Context(), &sqs.SendMessageInput{
		QueueUrl: aws.String(q.url), MessageBody: aws.String(poison),
	})
	if err != nil {
		t.Fatalf("send poison message: %v", err)
	}
	// Two runs receive it, and SQS moves it to the dead-letter queue on the
	// third receive because its receive count would exceed 2.
	for run := range 3 {
		if code, out := runLayover(t, env, "forward"); code != 0 {
			t.Fatalf("forward run %d with a poison message: exit %d\n%s", run, code, out)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	queueStats(t, env, "after 3 runs", "visible:        0", "in flight:      0", "dead-lettered:  1")

	code, out := runLayover(t, env, "dlq", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("dlq list: exit %d, want a header and one message\n%s", code, out)
	}
	id := strings.Fields(lines[1])[0]
	if code, out := runLayover(t, env, "dlq", "show", id); code != 0 || !strings.Contains(out, poison) {
		t.Errorf("dlq show %s: exit %d, want the stored body\n%s", id, code, out)
	}

	if code, out := runLayover(t, env, "dlq", "redrive"); code != 0 || !strings.Contains(out, "redriven 1 of 1") {
		t.Errorf("dlq redrive: exit %d, want 1 of 1 moved\n%s", code, out)
	}
	queueStats(t, env, "after redrive", "visible:        1", "dead-lettered:  0")
	if code, out := runLayover(t, env, "dlq", "list"); code != 0 || !strings.Contains(out, "empty") {
		t.Errorf("dlq list after redrive: exit %d, want an empty dead-letter queue\n%s", code, out)
	}
}

func TestSQSLargeBodyDelivered(t *testing.T) {
	q := createSQSQueue(t, queue.Options{})
	sim, simURL := startSimulator(t)
	env := testEnv(t.TempDir(), simURL, q.env(q.endpoint)...)

	// About 3,200 events of about 1 KB each: over 3 MiB, under the default
	// 4 MiB body limit, and more than three SQS messages of 1 MiB.
	const pad = 900
	ids := eventIDs("sqs-large", 3200)
	body := screenViewBatch("sqs-large-user", ids, pad)
	if len(body) < 3<<20 || len(body) >= 4<<20 {
		t.Fatalf("test body is %d bytes, want 3 MiB to 4 MiB", len(body))
	}

	serve := startServe(t, env)
	status, response := post(t, serve.base, webhookKey, body)
	if status != 200 {
		t.Fatalf("POST %d bytes: HTTP %d %s", len(body), status, response)
	}
	serve.stop(t)
	if parts := strings.Count(response, ",") + 1; parts < 4 {
		t.Errorf("a body of %d bytes was stored as %d messages (%s), want at least 4 of at most 1 MiB",
			len(body), parts, response)
	}

	if code, out := runLayover(t, env, "forward"); code != 0 {
		t.Fatalf("forward: exit %d\n%s", code, out)
	}
	if missing := missingIDs(sim, ids); len(missing) > 0 {
		t.Fatalf("%d of %d events not delivered, first %v", len(missing), len(ids), missing[:min(5, len(missing))])
	}
	stored := eventsByID(sim)
	for _, id := range []string{ids[0], ids[len(ids)/2], ids[len(ids)-1]} {
		if note, _ := stored[id].DataFields["note"].(string); len(note) != pad {
			t.Errorf("event %s: dataFields.note has %d bytes, want %d", id, len(note), pad)
		}
	}
	queueStats(t, env, "after forward", "visible:        0", "in flight:      0")
}

// loggedSQSRequests returns the request counts by operation from the line
// that the SQS engine logs when a layover process closes its queue.
func loggedSQSRequests(t testing.TB, log string) map[string]int {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="sqs requests sent"`) {
			continue
		}
		counts := map[string]int{}
		for _, field := range strings.Fields(line) {
			op, value, ok := strings.Cut(field, "=")
			if !ok || op == "" || op[0] < 'A' || op[0] > 'Z' {
				continue
			}
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Fatalf("request count %q in %q is not a number", field, line)
			}
			counts[op] = n
		}
		return counts
	}
	t.Fatalf("no sqs requests line in the log:\n%s", log)
	return nil
}

// formatCounts lists counts by operation name in a stable order.
func formatCounts(counts map[string]int) string {
	var b strings.Builder
	for _, op := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, " %s=%d", op, counts[op])
	}
	return strings.TrimSpace(b.String())
}

// TestSQSRequestsPerThousandBatches stores 1000 batches through serve and
// drains them with layover forward, reading the SQS requests of each step
// from the count that the engine logs on close. A design that receives 10
// messages per request and deletes 10 per request spends 100 receives, 1
// empty receive and 100 deletes, 201 in all, besides the 1000 sends;
// Layover must not spend more.
func TestSQSRequestsPerThousandBatches(t *testing.T) {
	q := createSQSQueue(t, queue.Options{})
	sim, simURL := startSimulator(t)
	env := testEnv(t.TempDir(), simURL, append(q.env(q.endpoint), "LAYOVER_VISIBILITY_TIMEOUT=2s", "LAYOVER_RETRY_BUDGET=1s")...)

	const batches, eventsPerBatch, clients = 1000, 3, 8
	var want []string
	bodies := make([][]byte, batches)
	for n := range bodies {
		ids := eventIDs(fmt.Sprintf("sqs-count-b%d", n), eventsPerBatch)
		want = append(want, ids...)
		bodies[n] = screenViewBatch(fmt.Sprintf("sqs-count-user-%d", n%50), ids, 0)
	}

	serve := startServe(t, env)
	postAll(t, serve.base, bodies, clients)
	serve.stop(t)
	ingest := loggedSQSRequests(t, serve.log.String())

	code, out := runLayover(t, env, "forward")
	if code != 0 {
		t.Fatalf("forward: exit %d\n%s", code, out)
	}
	drain := loggedSQSRequests(t, out)
	// NOTE: now and then the emulator's response to one ReceiveMessage does not
	// reach the SDK, which retries the request. The messages of the lost
	// response stay in flight until their visibility timeout, as they would on
	// SQS, and the next run delivers them.
	if missing := missingIDs(sim, want); len(missing) > 0 {
		t.Logf("%d events were in a receive whose response was lost; forwarding again after the visibility timeout", len(missing))
		time.Sleep(2100 * time.Millisecond)
		if code, out := runLayover(t, env, "forward"); code != 0 {
			t.Fatalf("second forward: exit %d\n%s", code, out)
		}
		if missing := missingIDs(sim, want); len(missing) > 0 {
			t.Fatalf("%d of %d events not delivered, first %v", len(missing), len(want), missing[:min(5, len(missing))])
		}
		drain["ReceiveMessage"] -= (len(missing)/eventsPerBatch + 9) / 10
	}

	t.Logf("ingest of %d batches: %s", batches, formatCounts(ingest))
	t.Logf("layover forward: %s", formatCounts(drain))
	if got := ingest["SendMessage"]; got != batches {
		t.Errorf("ingest sent %d SendMessage requests for %d batches, want %d", got, batches, batches)
	}
	receives := drain["ReceiveMessage"]
	deletes := drain["DeleteMessageBatch"] + drain["DeleteMessage"]
	t.Logf("receive and delete requests per %d batches: %d (bound 201)", batches, receives+deletes)
	// Each receive returns up to 10 messages, and one more finds the queue
	// empty.
	if maxReceives := batches/10 + 1; receives > maxReceives {
		t.Errorf("forward sent %d ReceiveMessage requests for %d batches, want at most %d",
			receives, batches, maxReceives)
	}
	if maxDeletes := batches / 10; deletes > maxDeletes {
		t.Errorf("forward sent %d delete requests for %d batches, want at most %d of 10 receipts each",
			deletes, batches, maxDeletes)
	}
	queueStats(t, env, "after forward", "visible:        0", "in flight:      0")
}

// postAll posts bodies to base from clients concurrent clients and fails
// the test on any response but 200.
func postAll(t testing.TB, base string, bodies [][]byte, clients int) {
	t.Helper()
	next := make(chan []byte)
	errs := make(chan error, len(bodies))
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for body := range next {
				if err := postBatch(base, body); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, body := range bodies {
		next <- body
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
