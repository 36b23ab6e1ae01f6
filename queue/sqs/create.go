package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/layover-dev/layover/queue"
)

// Ranges that SQS accepts (AWS API reference, SetQueueAttributes).
const (
	minRetention       = time.Minute
	maxRetention       = 14 * 24 * time.Hour
	maxMaxReceiveCount = 1000
	// maxMessageSize is the largest MaximumMessageSize attribute, 1 MiB.
	maxMessageSize = 1 << 20
)

// DeadLetterSuffix is appended to a queue's name to name its dead-letter
// queue.
const DeadLetterSuffix = "-dlq"

// CreateQueues creates the standard queue name and its dead-letter queue
// name+"-dlq", and returns the queue's URL. The queue keeps messages for
// opts.Retention (default 4 days) and moves a message to the dead-letter
// queue after opts.MaxReceiveCount receives (default 5). The dead-letter
// queue keeps messages for opts.DeadRetention (default 14 days), counted from
// their first enqueue. Both accept messages up to 1 MiB.
//
// Like CreateQueue, it succeeds when the queues exist with the same
// attributes and fails when their attributes differ.
func CreateQueues(
	ctx context.Context, client *sqs.Client, name string, opts queue.Options,
) (string, error) {
	opts = opts.WithDefaults()
	if err := validateCreateOptions(opts); err != nil {
		return "", fmt.Errorf("create sqs queues %s: %w", name, err)
	}
	deadName := name + DeadLetterSuffix
	dead, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(deadName),
		Attributes: queueAttributes(opts.DeadRetention),
	}, keepConnection)
	if err != nil {
		return "", fmt.Errorf("create dead-letter queue %s: %w", deadName, err)
	}
	arn, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       dead.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	}, keepConnection)
	if err != nil {
		return "", fmt.Errorf("get ARN of dead-letter queue %s: %w", deadName, err)
	}
	policy, err := json.Marshal(map[string]any{
		"deadLetterTargetArn": arn.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     opts.MaxReceiveCount,
	})
	if err != nil {
		return "", fmt.Errorf("encode redrive policy: %w", err)
	}
	attrs := queueAttributes(opts.Retention)
	attrs[string(types.QueueAttributeNameRedrivePolicy)] = string(policy)
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: attrs,
	}, keepConnection)
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(created.QueueUrl), nil
}

// queueAttributes returns the attributes that CreateQueues sets on both
// queues. ReceiveMessageWaitTimeSeconds is 0 because Receive relies on it:
// the SDK cannot send a WaitTimeSeconds of 0 that overrides the attribute.
func queueAttributes(retention time.Duration) map[string]string {
	return map[string]string{
		string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(
			int(retention / time.Second)),
		string(types.QueueAttributeNameMaximumMessageSize):            strconv.Itoa(maxMessageSize),
		string(types.QueueAttributeNameReceiveMessageWaitTimeSeconds): "0",
	}
}

func validateCreateOptions(opts queue.Options) error {
	if opts.MaxReceiveCount > maxMaxReceiveCount {
		return fmt.Errorf("MaxReceiveCount %d is out of range: SQS accepts 1 to %d",
			opts.MaxReceiveCount, maxMaxReceiveCount)
	}
	for _, r := range []struct {
		name  string
		value time.Duration
	}{{"Retention", opts.Retention}, {"DeadRetention", opts.DeadRetention}} {
		if r.value < minRetention || r.value > maxRetention {
			return fmt.Errorf("%s %v is out of range: SQS accepts %v to %v",
				r.name, r.value, minRetention, maxRetention)
		}
	}
	return nil
}
