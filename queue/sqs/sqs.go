// Package sqs is the Amazon SQS engine of the queue. It stores each webhook
// body as a message of a standard SQS queue and uses the dead-letter queue of
// that queue's redrive policy.
//
// SQS itself keeps receive counts and moves a message to the dead-letter
// queue once its count exceeds the redrive policy's maxReceiveCount. The
// engine adds what SQS lacks: bodies larger than the maximum message size
// are split by their events, bodies with characters that SQS does not accept
// are stored base64-encoded, and Release resets receive counts by sending
// the bodies again.
package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/layover-dev/layover/queue"
)

// Compile-time checks that Queue implements the queue interfaces.
var (
	_ queue.Queue       = (*Queue)(nil)
	_ queue.DeadLetters = (*Queue)(nil)
)

// ErrNoDeadLetterQueue is returned by the dead-letter methods when the queue
// has no RedrivePolicy attribute.
var ErrNoDeadLetterQueue = errors.New(
	"sqs: queue has no dead-letter queue: set its RedrivePolicy attribute")

// maxVisibility is the longest visibility timeout that SQS accepts.
const maxVisibility = 12 * time.Hour

// Queue is a standard SQS queue and the dead-letter queue of its redrive
// policy. It is safe for concurrent use.
type Queue struct {
	client          *sqs.Client
	url             string
	deadURL         string // "" when the queue has no redrive policy
	maxReceiveCount int    // from the redrive policy
	maxSize         int    // the queue's MaximumMessageSize attribute
	requests        Counter
	closed          atomic.Bool

	mu sync.Mutex
	// inFlight contains the messages that this Queue received and has not
	// deleted or released, by receipt handle, so that Release can send
	// their bodies again.
	inFlight map[string]inFlightMessage
}

type inFlightMessage struct {
	body     outgoing
	origin   origin
	deadline time.Time // when the message becomes visible again
}

// Open opens the SQS queue at queueURL with the standard AWS credential
// chain and region settings. The SDK sends requests to AWS_ENDPOINT_URL_SQS
// when it is set, as for an emulator. When no region is configured, Open
// takes it from the queue URL's host name (sqs.REGION.amazonaws.com).
//
// The queue must exist: CreateQueues creates it. Options are used only by
// CreateQueues, because an existing queue's redrive policy and retention
// period are its own attributes.
func Open(ctx context.Context, queueURL string, opts queue.Options) (*Queue, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("open sqs queue: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = regionFromURL(queueURL)
	}
	return OpenWithClient(ctx, sqs.NewFromConfig(cfg), queueURL, opts)
}

// OpenWithClient opens the SQS queue at queueURL with client. It reads the
// queue's MaximumMessageSize and RedrivePolicy attributes with one request,
// and looks up the dead-letter queue's URL with another when the policy is
// set. It returns an error for a FIFO queue, because Send sets no message
// group id. Like Open, it uses opts only through CreateQueues.
func OpenWithClient(
	ctx context.Context, client *sqs.Client, queueURL string, opts queue.Options,
) (*Queue, error) {
	q := &Queue{client: client, url: queueURL, inFlight: make(map[string]inFlightMessage)}
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameMaximumMessageSize,
			types.QueueAttributeNameRedrivePolicy,
			types.QueueAttributeNameFifoQueue,
		},
	}, q.callOptions)
	if err != nil {
		return nil, fmt.Errorf("open sqs queue %s: %w", queueURL, err)
	}
	attrs := out.Attributes
	if attrs[string(types.QueueAttributeNameFifoQueue)] == "true" {
		return nil, fmt.Errorf("open sqs queue %s: FIFO queues are not supported, "+
			"use a standard queue", queueURL)
	}
	maxSize, err := intAttribute(attrs, types.QueueAttributeNameMaximumMessageSize)
	if err != nil {
		return nil, fmt.Errorf("open sqs queue %s: %w", queueURL, err)
	}
	q.maxSize = int(maxSize)
	if policy := attrs[string(types.QueueAttributeNameRedrivePolicy)]; policy != "" {
		if err := q.resolveDeadLetterQueue(ctx, policy); err != nil {
			return nil, fmt.Errorf("open sqs queue %s: %w", queueURL, err)
		}
	}
	return q, nil
}

// resolveDeadLetterQueue parses a RedrivePolicy attribute and looks up the
// URL of its dead-letter queue.
func (q *Queue) resolveDeadLetterQueue(ctx context.Context, policy string) error {
	var p struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(policy), &p); err != nil {
		return fmt.Errorf("invalid RedrivePolicy attribute: %w", err)
	}
	// SQS returns maxReceiveCount as a number, and some tools write it as a
	// string.
	count, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	if err != nil {
		return fmt.Errorf("invalid maxReceiveCount %s in RedrivePolicy: %w", p.MaxReceiveCount, err)
	}
	// An SQS ARN is arn:PARTITION:sqs:REGION:ACCOUNT:NAME.
	arn := strings.Split(p.DeadLetterTargetArn, ":")
	if len(arn) != 6 || arn[0] != "arn" || arn[5] == "" {
		return fmt.Errorf("invalid deadLetterTargetArn %q in RedrivePolicy", p.DeadLetterTargetArn)
	}
	out, err := q.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{
		QueueName:              aws.String(arn[5]),
		QueueOwnerAWSAccountId: aws.String(arn[4]),
	}, q.callOptions)
	if err != nil {
		return fmt.Errorf("get URL of dead-letter queue %s: %w", p.DeadLetterTargetArn, err)
	}
	q.deadURL = aws.ToString(out.QueueUrl)
	q.maxReceiveCount = count
	return nil
}

// regionFromURL returns the region in an SQS queue URL's host name
// (sqs.REGION.amazonaws.com or the older REGION.queue.amazonaws.com), or "".
func regionFromURL(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	labels := strings.Split(u.Hostname(), ".")
	switch {
	case len(labels) >= 3 && labels[0] == "sqs":
		return labels[1]
	case len(labels) >= 3 && labels[1] == "queue":
		return labels[0]
	}
	return ""
}

// Requests returns the counter of the SQS requests that q has sent,
// including those of OpenWithClient.
func (q *Queue) Requests() *Counter { return &q.requests }

// callOptions is passed to every SQS call of q. It makes q.requests count
// the call and applies keepConnection.
func (q *Queue) callOptions(o *sqs.Options) {
	o.APIOptions = append(o.APIOptions, q.requests.AddTo)
	keepConnection(o)
}

// Close marks the queue closed and logs the requests this process sent, by
// operation, because SQS bills per request. Every method returns
// queue.ErrClosed after it. The SQS client has no resources that need
// closing.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	counts := q.requests.Counts()
	if len(counts) == 0 {
		return nil
	}
	args := []any{"component", "queue", "engine", "sqs"}
	for _, op := range slices.Sorted(maps.Keys(counts)) {
		args = append(args, op, counts[op])
	}
	slog.Info("sqs requests sent", args...)
	return nil
}

func (q *Queue) checkOpen() error {
	if q.closed.Load() {
		return queue.ErrClosed
	}
	return nil
}

// timeoutSeconds converts a visibility timeout to whole seconds, rounding up
// so that a message is never visible earlier than requested.
func timeoutSeconds(d time.Duration) (int32, error) {
	if d < 0 || d > maxVisibility {
		return 0, fmt.Errorf("visibility timeout %v is out of range: SQS accepts 0 to %v",
			d, maxVisibility)
	}
	return int32((d + time.Second - 1) / time.Second), nil
}
