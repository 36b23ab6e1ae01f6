package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// Queue settings that the deployment does not expose.
const (
	retentionDays     = 4  // the queue keeps a batch this long
	deadRetentionDays = 14 // the maximum that SQS accepts
	// maxMessageBytes is SQS's largest message, 1 MiB. Set explicitly
	// because tools written before SQS raised the limit in August 2025
	// default to 256 KiB.
	maxMessageBytes = 1 << 20
)

// queues are the queue of stored webhook bodies and its dead-letter queue.
type queues struct {
	main awssqs.Queue
	dead awssqs.Queue
}

// newQueues defines both queues with SQS-managed server-side encryption
// and a policy that rejects requests without TLS.
func newQueues(stack awscdk.Stack, cfg Config) queues {
	dead := awssqs.NewQueue(stack, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(deadRetentionDays)),
		Encryption:          awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:          jsii.Bool(true),
		MaxMessageSizeBytes: jsii.Number(maxMessageBytes),
	})
	main := awssqs.NewQueue(stack, jsii.String("Queue"), &awssqs.QueueProps{
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(retentionDays)),
		VisibilityTimeout:   awscdk.Duration_Seconds(jsii.Number(cfg.Visibility().Seconds())),
		Encryption:          awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:          jsii.Bool(true),
		MaxMessageSizeBytes: jsii.Number(maxMessageBytes),
		// The SQS engine relies on short polling: the SDK cannot send a
		// WaitTimeSeconds of 0 that would override a queue's long polling.
		ReceiveMessageWaitTime: awscdk.Duration_Seconds(jsii.Number(0)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			MaxReceiveCount: jsii.Number(float64(cfg.MaxReceiveCount)),
			Queue:           dead,
		},
	})
	return queues{main: main, dead: dead}
}
