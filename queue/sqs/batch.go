package sqs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQS batch limits (Amazon SQS Developer Guide, "Amazon SQS message quotas").
const (
	// maxBatchEntries is the maximum number of entries of one
	// SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch
	// request.
	maxBatchEntries = 10
	// maxBatchBytes is the maximum size, bodies and attributes, of one
	// SendMessageBatch request.
	maxBatchBytes = 1 << 20
)

// copyMessage is a stored body to send again, with attributes that keep its
// encoding and origin.
type copyMessage struct {
	body       string
	attributes map[string]types.MessageAttributeValue
}

// newCopy returns a copy of a stored body that keeps origin when it fits.
func (q *Queue) newCopy(body outgoing, origin origin) copyMessage {
	return copyMessage{body: body.body, attributes: body.attributes(origin, q.maxSize)}
}

// size returns the bytes that SQS counts for the copy, body and attributes.
func (c copyMessage) size() int {
	n := len(c.body)
	for name, value := range c.attributes {
		n += len(name) + len(aws.ToString(value.DataType)) + len(aws.ToString(value.StringValue))
	}
	return n
}

// sendBatches sends copies to queueURL with SendMessageBatch, packing up to
// 10 copies and maxBatchBytes into each request. It returns which copies
// were stored, and the errors of the others joined.
func (q *Queue) sendBatches(
	ctx context.Context, queueURL string, copies []copyMessage,
) ([]bool, error) {
	sent := make([]bool, len(copies))
	var errs []error
	for start := 0; start < len(copies); {
		end, size := start, 0
		for end < len(copies) && end-start < maxBatchEntries {
			size += copies[end].size()
			if size > maxBatchBytes {
				break
			}
			end++
		}
		// A copy is never larger than the maximum message size, so each
		// request takes at least one.
		end = max(end, start+1)
		if err := q.sendBatch(ctx, queueURL, copies, start, end, sent); err != nil {
			errs = append(errs, err)
		}
		start = end
	}
	return sent, errors.Join(errs...)
}

// sendBatch sends copies[start:end] in one request and sets sent[i] for each
// copy stored. Entry ids are the copies' indexes.
func (q *Queue) sendBatch(
	ctx context.Context, queueURL string, copies []copyMessage, start, end int, sent []bool,
) error {
	entries := make([]types.SendMessageBatchRequestEntry, 0, end-start)
	for i := start; i < end; i++ {
		entries = append(entries, types.SendMessageBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			MessageBody:       aws.String(copies[i].body),
			MessageAttributes: copies[i].attributes,
		})
	}
	out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{
		QueueUrl: aws.String(queueURL),
		Entries:  entries,
	}, q.callOptions)
	if err != nil {
		return fmt.Errorf("send message batch: %w", err)
	}
	for _, ok := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(ok.Id)); err == nil && i >= start && i < end {
			sent[i] = true
		}
	}
	var errs []error
	for _, failed := range out.Failed {
		errs = append(errs, fmt.Errorf("send message batch entry %s: %s: %s",
			aws.ToString(failed.Id), aws.ToString(failed.Code), aws.ToString(failed.Message)))
	}
	return errors.Join(errs...)
}

// deleteBatches deletes receipts from queueURL with DeleteMessageBatch, 10
// per request. It ignores entries that failed because the receipt is stale
// and returns the other failures joined.
func (q *Queue) deleteBatches(ctx context.Context, queueURL string, receipts []string) error {
	var errs []error
	for chunk := range slices.Chunk(receipts, maxBatchEntries) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, receipt := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{
				Id:            aws.String(strconv.Itoa(i)),
				ReceiptHandle: aws.String(receipt),
			}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(queueURL),
			Entries:  entries,
		}, q.callOptions)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete message batch: %w", err))
			continue
		}
		errs = append(errs, failedEntries("delete message batch", out.Failed)...)
	}
	return errors.Join(errs...)
}

// changeVisibilityBatches sets the visibility timeout of receipts in
// queueURL with ChangeMessageVisibilityBatch, 10 per request. It ignores
// entries that failed because the receipt is stale and returns the other
// failures joined.
func (q *Queue) changeVisibilityBatches(
	ctx context.Context, queueURL string, receipts []string, seconds int32,
) error {
	var errs []error
	for chunk := range slices.Chunk(receipts, maxBatchEntries) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, receipt := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(receipt),
				VisibilityTimeout: seconds,
			}
		}
		out, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(queueURL),
			Entries:  entries,
		}, q.callOptions)
		if err != nil {
			errs = append(errs, fmt.Errorf("change message visibility batch: %w", err))
			continue
		}
		errs = append(errs, failedEntries("change message visibility batch", out.Failed)...)
	}
	return errors.Join(errs...)
}

// failedEntries returns an error for each failed batch entry whose receipt
// is not merely stale.
func failedEntries(operation string, failed []types.BatchResultErrorEntry) []error {
	var errs []error
	for _, entry := range failed {
		if staleReceiptCode(aws.ToString(entry.Code)) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s entry %s: %s: %s",
			operation, aws.ToString(entry.Id), aws.ToString(entry.Code), aws.ToString(entry.Message)))
	}
	return errs
}

// staleReceiptCode reports whether a batch entry error code means that the
// receipt handle is no longer current. SQS may prefix codes with
// "AWS.SimpleQueueService.".
func staleReceiptCode(code string) bool {
	return strings.HasSuffix(code, "ReceiptHandleIsInvalid") ||
		strings.HasSuffix(code, "MessageNotInflight")
}
