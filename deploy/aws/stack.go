// Command aws is Layover's AWS deployment as a CDK app: API Gateway writes
// each webhook body straight into SQS, and a Lambda function on an
// EventBridge schedule drains the queue into Iterable with Layover's own
// forward code. Synthesize the CloudFormation template with
//
//	cd deploy/aws && CDK_OUTDIR=cdk.out go run .
//
// or deploy with the CDK command line (`cdk deploy` in this folder). The
// settings are CDK context values, listed in docs/deploy-aws.md.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// StackProps configures NewStack.
type StackProps struct {
	awscdk.StackProps
	Config Config
	// CodeDir is the folder with the Lambda bootstrap, and mapping.json
	// when Config.MappingFile is set.
	CodeDir string
}

// NewStack defines the whole deployment: the queues, the webhook API with
// its authorizer, the forwarder on its schedule, the secrets and the
// alarms.
func NewStack(scope constructs.Construct, id string, props *StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	cfg := props.Config
	code := lambdaCode(props.CodeDir)

	queues := newQueues(stack, cfg)
	iterableKey := iterableKeySource(stack, cfg)
	webhookKeys := webhookKeysSource(stack, cfg)
	forwarder := newForwarder(stack, cfg, code, queues, iterableKey)
	authorizerFn := newAuthorizerFunction(stack, cfg, code, webhookKeys)
	api := newWebhookAPI(stack, cfg, queues.main, authorizerFn)
	addAlarms(stack, cfg, queues, forwarder, api)

	output(stack, "WebhookUrl", api.UrlForPath(jsii.String(webhookPath)),
		"POST URL for mParticle's Webhook output")
	output(stack, "QueueUrl", queues.main.QueueUrl(), "SQS queue of stored webhook bodies")
	output(stack, "DeadLetterQueueUrl", queues.dead.QueueUrl(), "SQS dead-letter queue")
	output(stack, "ForwarderFunctionName", forwarder.FunctionName(), "Lambda function that forwards to Iterable")
	output(stack, "IterableKeySource", jsii.String(iterableKey.describe()),
		"where the forwarder reads the Iterable API key")
	output(stack, "WebhookKeysSource", jsii.String(webhookKeys.describe()),
		"where the authorizer reads the webhook keys")
	return stack
}

func output(stack awscdk.Stack, id string, value *string, description string) {
	awscdk.NewCfnOutput(stack, &id, &awscdk.CfnOutputProps{Value: value, Description: &description})
}
