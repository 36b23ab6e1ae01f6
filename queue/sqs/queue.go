package sqs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/layover-dev/layover/queue"
)

// releaseMargin is how long before its visibility deadline a message must be
// released for Release to send it again. Closer to the deadline, another
// receiver may already hold it, and sending it again would store it twice.
const releaseMargin = time.Second

// receiveSystemAttributes are the system attributes that every receive
// requests.
var receiveSystemAttributes = []types.MessageSystemAttributeName{
	types.MessageSystemAttributeNameApproximateReceiveCount,
	types.MessageSystemAttributeNameSentTimestamp,
}

// Send stores body with SendMessage and returns its message id. A body larger
// than the queue's maximum message size is split by its events array into
// several valid batches, each sent as one message, and Send returns their ids
// joined with commas. A body with characters that SQS does not accept is
// stored base64-encoded, and Receive decodes it.
//
// Send returns an error wrapping queue.ErrTooLarge, and stores nothing, when
// the body cannot be split to fit. When a later part fails to send, the parts
// sent before it stay stored, so a retry of the whole body stores their
// events twice.
func (q *Queue) Send(ctx context.Context, body []byte) (string, error) {
	if err := q.checkOpen(); err != nil {
		return "", err
	}
	parts, err := planParts(body, q.maxSize, false)
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	ids := make([]string, 0, len(parts))
	for i, part := range parts {
		partIDs, err := q.sendPart(ctx, part)
		if err != nil {
			return "", fmt.Errorf("send: part %d of %d: %w", i+1, len(parts), err)
		}
		ids = append(ids, partIDs...)
	}
	return strings.Join(ids, ","), nil
}

// sendPart sends one planned part and returns the ids of the messages sent.
func (q *Queue) sendPart(ctx context.Context, part outgoing) ([]string, error) {
	id, err := q.sendMessage(ctx, part)
	var invalid *types.InvalidMessageContents
	if err == nil {
		return []string{id}, nil
	}
	if part.encoded || !errors.As(err, &invalid) {
		return nil, err
	}
	// SQS rejected characters that validBody accepts. AWS documentation has
	// described both rejecting and replacing invalid characters, and fauxqs
	// 1.9 rejects every character above U+FFFF. Rather than fail a valid body
	// on every retry, send it base64-encoded, split again because base64 is
	// a third larger.
	parts, err := planParts(part.raw, q.maxSize, true)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(parts))
	for _, encoded := range parts {
		id, err := q.sendMessage(ctx, encoded)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// sendMessage sends one part with a new message id in idAttribute, and
// returns that id, or the SQS message id when the attribute does not fit.
func (q *Queue) sendMessage(ctx context.Context, part outgoing) (string, error) {
	attrs := part.attributes(origin{id: queue.NewMessageID()}, q.maxSize)
	out, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(q.url),
		MessageBody:       aws.String(part.body),
		MessageAttributes: attrs,
	}, q.callOptions)
	if err != nil {
		return "", err
	}
	if id, ok := attrs[idAttribute]; ok {
		return aws.ToString(id.StringValue), nil
	}
	return aws.ToString(out.MessageId), nil
}

// Receive returns up to maxMessages messages (at most 10) with one
// ReceiveMessage call and hides them for visibility. It does not wait for
// messages, so an empty result on a queue with fewer than about 1,000
// messages may be a sampling miss of SQS short polling rather than an empty
// queue. SQS moves
// messages whose receive count exceeds the redrive policy's maxReceiveCount
// to the dead-letter queue instead of returning them.
//
// NOTE: the SDK omits zero values of VisibilityTimeout and WaitTimeSeconds,
// so a visibility of 0 hides messages for 1 second, and a queue whose
// ReceiveMessageWaitTimeSeconds attribute is set long-polls an empty queue.
func (q *Queue) Receive(
	ctx context.Context, maxMessages int, visibility time.Duration,
) ([]queue.Message, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if maxMessages <= 0 {
		return nil, nil
	}
	seconds, err := timeoutSeconds(visibility)
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	seconds = max(seconds, 1)
	start := time.Now()
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(min(maxMessages, queue.MaxReceiveBatch)),
		VisibilityTimeout:           seconds,
		MessageSystemAttributeNames: receiveSystemAttributes,
		MessageAttributeNames:       attributeNames,
	}, q.callOptions)
	if err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	// The visibility timeout starts when SQS returns the message, so a
	// deadline counted from before the request is never later than the real
	// one.
	deadline := start.Add(time.Duration(seconds) * time.Second)
	messages := make([]queue.Message, 0, len(out.Messages))
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pruneInFlight(start)
	for _, m := range out.Messages {
		q.inFlight[aws.ToString(m.ReceiptHandle)] = inFlightMessage{
			body: storedBody(m), origin: messageOrigin(m), deadline: deadline,
		}
		messages = append(messages, receivedMessage(m))
	}
	return messages, nil
}

// receivedMessage converts an SQS message to a queue.Message.
func receivedMessage(m types.Message) queue.Message {
	body, err := decodeBody(m)
	if err != nil {
		// Return a body that Layover did not encode as it is stored, so that
		// the forwarder dead-letters it as undecodable instead of every
		// receive failing.
		body = []byte(aws.ToString(m.Body))
	}
	o := messageOrigin(m)
	count, _ := strconv.Atoi(
		m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	return queue.Message{
		ID:           o.id,
		Body:         body,
		Receipt:      aws.ToString(m.ReceiptHandle),
		ReceiveCount: count,
		EnqueuedAt:   o.enqueuedAt,
	}
}

// pruneInFlight removes messages whose visibility timeout has passed. The
// caller holds q.mu.
func (q *Queue) pruneInFlight(now time.Time) {
	for receipt, m := range q.inFlight {
		if !m.deadline.After(now) {
			delete(q.inFlight, receipt)
		}
	}
}

// Delete removes messages with DeleteMessageBatch, 10 receipts per request,
// and checks every entry. A receipt that SQS reports as invalid (stale) is
// ignored, and other failed entries are returned as one joined error.
func (q *Queue) Delete(ctx context.Context, receipts []string) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	q.forgetInFlight(receipts)
	if err := q.deleteBatches(ctx, q.url, receipts); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

func (q *Queue) forgetInFlight(receipts []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, receipt := range receipts {
		delete(q.inFlight, receipt)
	}
}

// ChangeVisibility calls ChangeMessageVisibility. It returns
// queue.ErrStaleReceipt when SQS reports the receipt as invalid or the
// message as not in flight.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	seconds, err := timeoutSeconds(timeout)
	if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	start := time.Now()
	_, err = q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receipt),
		VisibilityTimeout: seconds,
	}, q.callOptions)
	var notInFlight *types.MessageNotInflight
	var invalid *types.ReceiptHandleIsInvalid
	if errors.As(err, &notInFlight) || errors.As(err, &invalid) {
		q.forgetInFlight([]string{receipt})
		return fmt.Errorf("change visibility: %w: %w", queue.ErrStaleReceipt, err)
	}
	if err != nil {
		return fmt.Errorf("change visibility: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if m, ok := q.inFlight[receipt]; ok {
		m.deadline = start.Add(time.Duration(seconds) * time.Second)
		q.inFlight[receipt] = m
	}
	return nil
}

// Release makes in-flight messages visible again with a fresh receive count.
// SQS cannot take back a receive, so Release sends each body again as a new
// message with SendMessageBatch and then deletes the original with
// DeleteMessageBatch: about 2 requests per 10 messages instead of 1 for
// ChangeMessageVisibilityBatch. The cost is worth it because a destination
// outage must never push messages toward the dead-letter queue. The copy
// keeps the message id and enqueue time that Receive returns, but SQS
// restarts its retention period.
//
// Release can send again only messages that this Queue received and whose
// visibility timeout has more than a second left. It makes other receipts
// visible with ChangeMessageVisibilityBatch, keeping their receive counts,
// and ignores stale ones.
func (q *Queue) Release(ctx context.Context, receipts []string) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	known, unknown := q.takeInFlight(receipts, time.Now().Add(releaseMargin))
	var errs []error
	if len(known) > 0 {
		if err := q.sendAgain(ctx, known); err != nil {
			errs = append(errs, err)
		}
	}
	if len(unknown) > 0 {
		if err := q.changeVisibilityBatches(ctx, q.url, unknown, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// releasable is an in-flight message that Release can send again.
type releasable struct {
	receipt string
	message inFlightMessage
}

// takeInFlight removes receipts from q.inFlight and returns the messages
// whose visibility deadline is after cutoff, and the other receipts.
func (q *Queue) takeInFlight(receipts []string, cutoff time.Time) ([]releasable, []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var known []releasable
	var unknown []string
	for _, receipt := range receipts {
		m, ok := q.inFlight[receipt]
		delete(q.inFlight, receipt)
		if ok && m.deadline.After(cutoff) {
			known = append(known, releasable{receipt: receipt, message: m})
			continue
		}
		unknown = append(unknown, receipt)
	}
	return known, unknown
}

// sendAgain sends copies of released messages and deletes the originals
// whose copies were stored. Messages whose copies failed stay in flight and
// in q.inFlight, so a later Release can try again.
func (q *Queue) sendAgain(ctx context.Context, released []releasable) error {
	copies := make([]copyMessage, len(released))
	for i, r := range released {
		copies[i] = q.newCopy(r.message.body, r.message.origin)
	}
	sent, sendErr := q.sendBatches(ctx, q.url, copies)
	var done []string
	q.mu.Lock()
	for i, r := range released {
		if sent[i] {
			done = append(done, r.receipt)
		} else {
			q.inFlight[r.receipt] = r.message
		}
	}
	q.mu.Unlock()
	if len(done) == 0 {
		return sendErr
	}
	// NOTE: when this delete fails, the body is stored twice. Deterministic
	// Iterable event ids make the second delivery an update.
	return errors.Join(sendErr, q.deleteBatches(ctx, q.url, done))
}

// Stats returns the queue's ApproximateNumberOfMessages (Visible) and
// ApproximateNumberOfMessagesNotVisible (InFlight), and the dead-letter
// queue's two counts added (DeadLettered). SQS exposes the age of the oldest
// message only through the CloudWatch metric
// ApproximateAgeOfOldestMessage, so OldestAge is 0. SQS does not count
// messages removed by retention, so Expired is 0.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := q.checkOpen(); err != nil {
		return queue.Stats{}, err
	}
	visible, inFlight, err := q.messageCounts(ctx, q.url)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("stats: %w", err)
	}
	stats := queue.Stats{Visible: visible, InFlight: inFlight}
	if q.deadURL != "" {
		deadVisible, deadInFlight, err := q.messageCounts(ctx, q.deadURL)
		if err != nil {
			return queue.Stats{}, fmt.Errorf("stats of dead-letter queue: %w", err)
		}
		stats.DeadLettered = deadVisible + deadInFlight
	}
	return stats, nil
}

// messageCounts returns the approximate numbers of visible and in-flight
// messages of the queue at queueURL.
func (q *Queue) messageCounts(
	ctx context.Context, queueURL string,
) (visible, inFlight int64, err error) {
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	}, q.callOptions)
	if err != nil {
		return 0, 0, err
	}
	visible, err = intAttribute(out.Attributes, types.QueueAttributeNameApproximateNumberOfMessages)
	if err != nil {
		return 0, 0, err
	}
	inFlight, err = intAttribute(out.Attributes,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
	if err != nil {
		return 0, 0, err
	}
	return visible, inFlight, nil
}

// intAttribute parses the integer queue attribute name.
func intAttribute(attrs map[string]string, name types.QueueAttributeName) (int64, error) {
	n, err := strconv.ParseInt(attrs[string(name)], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid %s attribute: %w", name, err)
	}
	return n, nil
}
