package sqs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/layover-dev/layover/internal/testenv"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/queuetest"
)

// testRegion is the region of the test client. fauxqs keeps queues per
// region, taken from the request signature.
const testRegion = "us-east-1"

// newTestClient returns an SQS client for the emulator that the test script
// started, or skips the test.
func newTestClient(t testing.TB) *sqs.Client {
	t.Helper()
	endpoint := testenv.SQSEndpoint(t)
	return sqs.New(sqs.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// openTestQueue creates a new queue pair with opts and opens it. Cleanup
// closes the queue and deletes both SQS queues.
func openTestQueue(t testing.TB, opts queue.Options) (*Queue, *sqs.Client) {
	t.Helper()
	client := newTestClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	name := "layover-test-" + strings.ToLower(rand.Text()[:12])
	url, err := CreateQueues(ctx, client, name, opts)
	if err != nil {
		t.Fatalf("CreateQueues(%s): %v", name, err)
	}
	t.Cleanup(func() { deleteTestQueues(t, client, name) })

	q, err := OpenWithClient(ctx, client, url, opts)
	if err != nil {
		t.Fatalf("OpenWithClient(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q, client
}

// deleteTestQueues deletes the queue name and its dead-letter queue.
func deleteTestQueues(t testing.TB, client *sqs.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{name, name + DeadLetterSuffix} {
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(n)})
		if err == nil {
			_, err = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
		}
		if err != nil {
			t.Logf("delete test queue %s: %v", n, err)
		}
	}
}

func TestContract(t *testing.T) {
	newTestClient(t) // skip before Run when the emulator is absent
	const retentionReason = "SQS keeps messages at least 60 seconds " +
		"(MessageRetentionPeriod), and fauxqs 1.9 does not expire messages at all"
	queuetest.Run(t,
		func(t testing.TB, opts queue.Options) queue.Queue {
			q, _ := openTestQueue(t, opts)
			return q
		},
		queuetest.ReleaseResetsReceiveCount(),
		queuetest.WithoutOldestAge("SQS reports the age of the oldest message only as a CloudWatch metric"),
		queuetest.WithoutExpiredCount("SQS does not count messages removed by retention"),
		queuetest.WithEarlyVisibility(time.Millisecond,
			"fauxqs keeps visibility deadlines in whole milliseconds of Date.now()"),
		queuetest.Skip("Retention", retentionReason),
		queuetest.Skip("DeadRetention", retentionReason),
	)
}

// receiveUntil receives with Receive until it has n messages, hiding each
// for a minute, and fails after 50 empty receives.
func receiveUntil(t *testing.T, q *Queue, n int) []queue.Message {
	t.Helper()
	var all []queue.Message
	for empty := 0; len(all) < n; {
		msgs, err := q.Receive(t.Context(), queue.MaxReceiveBatch, time.Minute)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 0 {
			if empty++; empty == 50 {
				t.Fatalf("received %d of %d messages, then only empty receives", len(all), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		all = append(all, msgs...)
	}
	return all
}

// largeBatch returns an mParticle batch of more than size bytes made from a
// fixture's events, with an event with invalid UTF-8 first and an emoji
// event in the middle, and it returns the batch's other fields and events.
func largeBatch(t *testing.T, size int) ([]byte, map[string]json.RawMessage, []json.RawMessage) {
	t.Helper()
	path := filepath.Join(testenv.SharedDir(t), "fixtures", "mparticle", "batch-mixed-all-types-ios.json")
	fixture, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("fixture absent: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(fixture, &fields); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	var sample []json.RawMessage
	if err := json.Unmarshal(fields["events"], &sample); err != nil {
		t.Fatalf("decode events of %s: %v", path, err)
	}
	delete(fields, "events")

	events := []json.RawMessage{
		json.RawMessage("{\"event_type\":\"custom_event\",\"data\":{\"event_name\":\"bad \xff byte\"}}"),
	}
	for total := 0; total <= size; {
		for _, e := range sample {
			events = append(events, e)
			total += len(e) + 1
		}
	}
	emoji := json.RawMessage(`{"event_type":"custom_event","data":{"event_name":"launch 🚀"}}`)
	events = slices.Insert(events, len(events)/2, emoji)

	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	buf.Write(bytes.Join(rawBytes(events), []byte(",")))
	buf.WriteString(`]`)
	for _, key := range slices.Sorted(maps.Keys(fields)) {
		fmt.Fprintf(&buf, ",%q:%s", key, fields[key])
	}
	buf.WriteString(`}`)
	return buf.Bytes(), fields, events
}

func rawBytes(events []json.RawMessage) [][]byte {
	out := make([][]byte, len(events))
	for i, e := range events {
		out[i] = e
	}
	return out
}

func TestSendSplitsLargeBatch(t *testing.T) {
	q, _ := openTestQueue(t, queue.Options{})
	body, fields, events := largeBatch(t, 3<<20)

	ids, err := q.Send(t.Context(), body)
	if err != nil {
		t.Fatalf("Send(%d bytes): %v", len(body), err)
	}
	partIDs := strings.Split(ids, ",")
	if len(partIDs) < 3 {
		t.Fatalf("Send of %d bytes returned %d ids, want at least 3", len(body), len(partIDs))
	}
	t.Logf("body of %d bytes with %d events stored as %d messages", len(body), len(events), len(partIDs))

	received := map[string][]byte{}
	for _, m := range receiveUntil(t, q, len(partIDs)) {
		received[m.ID] = m.Body
	}
	var got []json.RawMessage
	for i, id := range partIDs {
		part, ok := received[id]
		if !ok {
			t.Fatalf("part %d (id %s) not received", i, id)
		}
		if len(part) > 1<<20 {
			t.Errorf("part %d is %d bytes, over 1 MiB", i, len(part))
		}
		var partFields map[string]json.RawMessage
		if err := json.Unmarshal(part, &partFields); err != nil {
			t.Fatalf("part %d is not a JSON object: %v", i, err)
		}
		var partEvents []json.RawMessage
		if err := json.Unmarshal(partFields["events"], &partEvents); err != nil {
			t.Fatalf("part %d: events is not an array: %v", i, err)
		}
		delete(partFields, "events")
		if !maps.EqualFunc(partFields, fields, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Errorf("part %d: fields other than events differ from the original's", i)
		}
		got = append(got, partEvents...)
	}
	if len(got) != len(events) {
		t.Fatalf("parts contain %d events, want %d", len(got), len(events))
	}
	for i := range events {
		if !bytes.Equal(got[i], events[i]) {
			t.Fatalf("event %d differs from the original: got %.80s, want %.80s", i, got[i], events[i])
		}
	}
}

func TestInvalidCharactersRoundTrip(t *testing.T) {
	q, _ := openTestQueue(t, queue.Options{})
	bodies := map[string][]byte{
		"NUL and control":   []byte("{\"a\":\"\x00\x01\x1f\"}"),
		"invalid UTF-8":     []byte("{\"a\":\"\xff\xfe\"}"),
		"UTF-8 surrogate":   []byte("\xed\xa0\x80"),
		"U+FFFE and U+FFFF": []byte("\uFFFE\uFFFF"),
		"emoji":             []byte(`{"event_name":"launch 🚀"}`),
		"valid":             []byte(`{"event_name":"Köln ✓"}`),
	}
	names := map[string]string{}
	for name, body := range bodies {
		id, err := q.Send(t.Context(), body)
		if err != nil {
			t.Fatalf("Send(%s): %v", name, err)
		}
		names[id] = name
	}
	for _, m := range receiveUntil(t, q, len(bodies)) {
		name := names[m.ID]
		if !bytes.Equal(m.Body, bodies[name]) {
			t.Errorf("%s: received %q, want %q", name, m.Body, bodies[name])
		}
	}
}

func TestValidBodyStoredUnencoded(t *testing.T) {
	q, client := openTestQueue(t, queue.Options{})
	body := `{"event_name":"Köln ✓"}`
	if _, err := q.Send(t.Context(), []byte(body)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(q.url),
		MaxNumberOfMessages:   1,
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage returned %d messages, want 1", len(out.Messages))
	}
	m := out.Messages[0]
	if got := aws.ToString(m.Body); got != body {
		t.Errorf("stored body = %q, want %q", got, body)
	}
	if _, ok := m.MessageAttributes[encodingAttribute]; ok {
		t.Errorf("valid body stored with the %s attribute", encodingAttribute)
	}
}

func TestDeleteBatchWithStaleReceipt(t *testing.T) {
	q, _ := openTestQueue(t, queue.Options{})
	for i := range 12 {
		if _, err := q.Send(t.Context(), fmt.Appendf(nil, "message %d", i)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs := receiveUntil(t, q, 12)
	stale := msgs[0].Receipt
	if err := q.ChangeVisibility(t.Context(), stale, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	again := receiveUntil(t, q, 1)
	if again[0].ID != msgs[0].ID {
		t.Fatalf("received id %s, want %s", again[0].ID, msgs[0].ID)
	}
	msgs[0] = again[0]

	receipts := []string{stale, queue.NewReceipt()}
	for _, m := range msgs {
		receipts = append(receipts, m.Receipt)
	}
	q.Requests().Reset()
	if err := q.Delete(t.Context(), receipts); err != nil {
		t.Fatalf("Delete of 12 current, 1 stale and 1 unknown receipt: %v", err)
	}
	if n := q.Requests().Counts()["DeleteMessageBatch"]; n != 2 {
		t.Errorf("Delete of 14 receipts sent %d DeleteMessageBatch requests, want 2", n)
	}
	st, err := q.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Visible != 0 || st.InFlight != 0 {
		t.Errorf("after Delete: %d visible, %d in flight; want 0 and 0", st.Visible, st.InFlight)
	}
}

func TestReleaseResetsReceiveCount(t *testing.T) {
	q, _ := openTestQueue(t, queue.Options{MaxReceiveCount: 2})
	body := []byte("destination down \x00")
	id, err := q.Send(t.Context(), body)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	first := receiveUntil(t, q, 1)[0]
	if err := q.ChangeVisibility(t.Context(), first.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	second := receiveUntil(t, q, 1)[0]
	if second.ReceiveCount != 2 {
		t.Fatalf("second receive: ReceiveCount = %d, want 2", second.ReceiveCount)
	}

	q.Requests().Reset()
	if err := q.Release(t.Context(), []string{second.Receipt}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	counts := q.Requests().Counts()
	if counts["SendMessageBatch"] != 1 {
		t.Errorf("Release of one message sent %d SendMessageBatch requests, want 1", counts["SendMessageBatch"])
	}
	if counts["DeleteMessageBatch"] != 1 {
		t.Errorf("Release of one message sent %d DeleteMessageBatch requests, want 1", counts["DeleteMessageBatch"])
	}
	if total := q.Requests().Total(); total != 2 {
		t.Errorf("Release of one message sent %d requests (%v), want 2", total, counts)
	}

	third := receiveUntil(t, q, 1)[0]
	if third.ReceiveCount != 1 {
		t.Errorf("ReceiveCount after Release = %d, want 1", third.ReceiveCount)
	}
	if third.ID != id {
		t.Errorf("id after Release = %s, want %s", third.ID, id)
	}
	if !third.EnqueuedAt.Equal(first.EnqueuedAt) {
		t.Errorf("EnqueuedAt after Release = %v, want %v", third.EnqueuedAt, first.EnqueuedAt)
	}
	if !bytes.Equal(third.Body, body) {
		t.Errorf("body after Release = %q, want %q", third.Body, body)
	}
}

// TestRequestsPerThousandBatches measures the SQS requests of storing 1,000
// webhook bodies and draining them the way the forwarder does: receive 10
// at a time until a receive returns none, and delete each batch of 10.
func TestRequestsPerThousandBatches(t *testing.T) {
	q, _ := openTestQueue(t, queue.Options{})
	const batches = 1000
	q.Requests().Reset()
	for i := range batches {
		body := fmt.Appendf(nil, `{"events":[{"event_type":"screen_view","data":{"n":%d}}]}`, i)
		if _, err := q.Send(t.Context(), body); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}

	received := drain(t, q)
	counts := q.Requests().Counts()
	if received != batches {
		t.Fatalf("drained %d messages, want %d (requests %v)", received, batches, counts)
	}
	t.Logf("requests for %d stored batches: %d in all; "+
		"SendMessage %d, ReceiveMessage %d, DeleteMessageBatch %d",
		batches, q.Requests().Total(),
		counts["SendMessage"], counts["ReceiveMessage"], counts["DeleteMessageBatch"])

	if counts["SendMessage"] > batches {
		t.Errorf("SendMessage requests = %d, want at most %d (one per batch)",
			counts["SendMessage"], batches)
	}
	// 100 full receives, 100 batch deletes and the final empty receive.
	if n := counts["ReceiveMessage"] + counts["DeleteMessageBatch"]; n > 201 {
		t.Errorf("ReceiveMessage + DeleteMessageBatch requests = %d, want at most 201", n)
	}
	if total := q.Requests().Total(); total > batches+201 {
		t.Errorf("total requests = %d, want at most %d", total, batches+201)
	}
}

// drain receives 10 messages at a time and deletes them until a receive
// returns none, and returns how many it received.
func drain(t *testing.T, q *Queue) int {
	t.Helper()
	received := 0
	for {
		msgs, err := q.Receive(t.Context(), queue.MaxReceiveBatch, time.Minute)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(msgs) == 0 {
			return received
		}
		receipts := make([]string, len(msgs))
		for i, m := range msgs {
			receipts[i] = m.Receipt
		}
		if err := q.Delete(t.Context(), receipts); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		received += len(msgs)
	}
}

func TestSendTooLargeEventStoresNothing(t *testing.T) {
	q, _ := openTestQueue(t, queue.Options{})
	huge := strings.Repeat("x", 1<<20)
	body := fmt.Appendf(nil, `{"events":[{"n":1},{"text":"%s"}]}`, huge)
	_, err := q.Send(t.Context(), body)
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Send with a 1 MiB event: error = %v, want queue.ErrTooLarge", err)
	}
	st, err := q.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Visible != 0 {
		t.Errorf("%d messages stored after ErrTooLarge, want 0", st.Visible)
	}
}

func TestOpenWithEnvironment(t *testing.T) {
	client := newTestClient(t)
	name := "layover-test-" + strings.ToLower(rand.Text()[:12])
	url, err := CreateQueues(t.Context(), client, name, queue.Options{})
	if err != nil {
		t.Fatalf("CreateQueues: %v", err)
	}
	t.Cleanup(func() { deleteTestQueues(t, client, name) })

	// No region is set, so Open takes it from the queue URL.
	t.Setenv("AWS_ENDPOINT_URL_SQS", testenv.SQSEndpoint(t))
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "absent"))

	q, err := Open(t.Context(), url, queue.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	defer q.Close()
	if _, err := q.Send(t.Context(), []byte("via the environment")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := receiveUntil(t, q, 1)[0]; string(m.Body) != "via the environment" {
		t.Errorf("received %q, want the sent body", m.Body)
	}
	if _, err := q.ListDead(t.Context(), "", 10); err != nil {
		t.Errorf("ListDead: %v (Open did not find the dead-letter queue)", err)
	}
}
