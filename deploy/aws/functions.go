package main

import (
	"path"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/jsii-runtime-go"
)

// Environment variables of the functions. The package serverless of the
// main module reads them; a test checks that it still declares each name.
const (
	envHandler              = "LAYOVER_LAMBDA_HANDLER"
	envQueue                = "LAYOVER_QUEUE"
	envIterableKeySecret    = "ITERABLE_API_KEY_SECRET"
	envIterableKeyParameter = "ITERABLE_API_KEY_PARAMETER"
	envIterableURL          = "ITERABLE_BASE_URL"
	envMapping              = "LAYOVER_MAPPING"
	envVisibility           = "LAYOVER_VISIBILITY_TIMEOUT"
	envAPIKeysSecret        = "LAYOVER_API_KEYS_SECRET"
	envAPIKeysParameter     = "LAYOVER_API_KEYS_PARAMETER"
	envKeysCacheTTL         = "LAYOVER_API_KEYS_CACHE_TTL"
	envUsagePlanKey         = "LAYOVER_USAGE_PLAN_KEY"
)

// Settings of the functions that the deployment does not expose.
const (
	authorizerMemoryMB = 128
	authorizerTimeout  = 10 * time.Second
	// maxAsyncEventAge is the longest time Lambda keeps an asynchronous
	// invocation that waits for a free instance.
	maxAsyncEventAge = 6 * time.Hour
)

func lambdaCode(dir string) awslambda.Code {
	return awslambda.Code_FromAsset(jsii.String(dir), nil)
}

// secretSource is the location of a secret value for a function: the
// environment variable that names it, that variable's value, and the grant
// of read access.
type secretSource struct {
	envVar string
	value  string // a name, an ARN or a token that resolves to an ARN
	grant  func(grantee awsiam.IGrantable)
}

func (s secretSource) describe() string { return s.envVar + "=" + s.value }

// existingSecret refers to a Secrets Manager secret by name, or by its
// complete ARN, which ends in a hyphen and six random characters.
func existingSecret(stack awscdk.Stack, id, nameOrArn, envVar string) secretSource {
	var secret awssecretsmanager.ISecret
	if strings.HasPrefix(nameOrArn, "arn:") {
		secret = awssecretsmanager.Secret_FromSecretCompleteArn(stack, &id, &nameOrArn)
	} else {
		secret = awssecretsmanager.Secret_FromSecretNameV2(stack, &id, &nameOrArn)
	}
	return secretSource{envVar: envVar, value: nameOrArn, grant: func(g awsiam.IGrantable) { secret.GrantRead(g, nil) }}
}

// existingParameter refers to an SSM parameter. A SecureString encrypted
// with the AWS managed key aws/ssm needs no further grant. A customer
// managed key needs kms:Decrypt, which this grant does not give.
func existingParameter(stack awscdk.Stack, id, name, envVar string) secretSource {
	param := awsssm.StringParameter_FromSecureStringParameterAttributes(stack, &id,
		&awsssm.SecureStringParameterAttributes{ParameterName: &name})
	return secretSource{envVar: envVar, value: name, grant: func(g awsiam.IGrantable) { param.GrantRead(g) }}
}

// newSecret defines a secret whose initial value is a generated string of
// letters and digits.
func newSecret(stack awscdk.Stack, id, description, envVar string) secretSource {
	secret := awssecretsmanager.NewSecret(stack, &id, &awssecretsmanager.SecretProps{
		Description: &description,
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(40),
			ExcludePunctuation: jsii.Bool(true),
			IncludeSpace:       jsii.Bool(false),
		},
	})
	return secretSource{envVar: envVar, value: *secret.SecretArn(), grant: func(g awsiam.IGrantable) { secret.GrantRead(g, nil) }}
}

func iterableKeySource(stack awscdk.Stack, cfg Config) secretSource {
	switch {
	case cfg.IterableKeySecret != "":
		return existingSecret(stack, "IterableApiKey", cfg.IterableKeySecret, envIterableKeySecret)
	case cfg.IterableKeyParameter != "":
		return existingParameter(stack, "IterableApiKey", cfg.IterableKeyParameter, envIterableKeyParameter)
	}
	return newSecret(stack, "IterableApiKey",
		"Server-side API key of the Iterable project that Layover forwards to. "+
			"Replace the generated value with the key.", envIterableKeySecret)
}

func webhookKeysSource(stack awscdk.Stack, cfg Config) secretSource {
	switch {
	case cfg.WebhookKeysSecret != "":
		return existingSecret(stack, "WebhookKeys", cfg.WebhookKeysSecret, envAPIKeysSecret)
	case cfg.WebhookKeysParameter != "":
		return existingParameter(stack, "WebhookKeys", cfg.WebhookKeysParameter, envAPIKeysParameter)
	}
	return newSecret(stack, "WebhookKeys",
		"Keys that POST /event-batch accepts as Authorization: Bearer KEY, "+
			"separated by commas or newlines. List the old and the new key while rotating.", envAPIKeysSecret)
}

// newForwarder defines the forwarder function and its schedule. Reserved
// concurrency 1 keeps runs from overlapping, and neither EventBridge nor
// Lambda retries a failed run: the next scheduled run is the retry.
func newForwarder(stack awscdk.Stack, cfg Config, code awslambda.Code, q queues, key secretSource) awslambda.Function {
	env := map[string]*string{
		envHandler:     jsii.String("forward"),
		envQueue:       q.main.QueueUrl(),
		key.envVar:     jsii.String(key.value),
		envIterableURL: jsii.String(cfg.IterableBaseURL),
		envVisibility:  jsii.String(formatDuration(cfg.Visibility())),
	}
	if cfg.MappingFile != "" {
		env[envMapping] = jsii.String(path.Join(lambdaTaskRoot, mappingName))
	}
	// A queued invocation older than one schedule period is superseded by
	// the next scheduled one.
	eventAge := awscdk.Duration_Seconds(jsii.Number(min(max(cfg.ForwardEvery, time.Minute), maxAsyncEventAge).Seconds()))
	fn := awslambda.NewFunction(stack, jsii.String("Forwarder"), &awslambda.FunctionProps{
		Description:                  jsii.String("Layover: drains the SQS queue into Iterable's trackBulk API"),
		Runtime:                      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:                 awslambda.Architecture_ARM_64(),
		Handler:                      jsii.String(bootstrapName),
		Code:                         code,
		MemorySize:                   jsii.Number(float64(cfg.ForwarderMemoryMB)),
		Timeout:                      awscdk.Duration_Seconds(jsii.Number(cfg.ForwarderTimeout.Seconds())),
		ReservedConcurrentExecutions: jsii.Number(1),
		RetryAttempts:                jsii.Number(0),
		MaxEventAge:                  eventAge,
		Environment:                  &env,
		LogGroup:                     newLogGroup(stack, "ForwarderLogs"),
	})
	q.main.GrantConsumeMessages(fn)
	// Releasing messages during an Iterable outage sends them again.
	q.main.GrantSendMessages(fn)
	// Opening the queue looks up its dead-letter queue.
	q.dead.Grant(fn, jsii.String("sqs:GetQueueUrl"), jsii.String("sqs:GetQueueAttributes"))
	key.grant(fn)

	rule := awsevents.NewRule(stack, jsii.String("ForwardSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Layover: runs the forwarder every " + formatDuration(cfg.ForwardEvery)),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(cfg.ForwardEvery.Minutes()))),
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
		RetryAttempts: jsii.Number(0),
		MaxEventAge:   eventAge,
	}))
	return fn
}

// newAuthorizerFunction defines the function of the webhook's REQUEST
// authorizer.
func newAuthorizerFunction(stack awscdk.Stack, cfg Config, code awslambda.Code, keys secretSource) awslambda.Function {
	env := map[string]*string{
		envHandler:      jsii.String("authorize"),
		keys.envVar:     jsii.String(keys.value),
		envKeysCacheTTL: jsii.String(formatDuration(cfg.AuthorizerCacheTTL)),
		envUsagePlanKey: usagePlanKeyValue(),
	}
	fn := awslambda.NewFunction(stack, jsii.String("Authorizer"), &awslambda.FunctionProps{
		Description:  jsii.String("Layover: checks the webhook key in the Authorization header"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String(bootstrapName),
		Code:         code,
		MemorySize:   jsii.Number(authorizerMemoryMB),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(authorizerTimeout.Seconds())),
		Environment:  &env,
		LogGroup:     newLogGroup(stack, "AuthorizerLogs"),
	})
	keys.grant(fn)
	return fn
}

func newLogGroup(stack awscdk.Stack, id string) awslogs.LogGroup {
	return awslogs.NewLogGroup(stack, &id, &awslogs.LogGroupProps{
		Retention: awslogs.RetentionDays_ONE_MONTH,
	})
}
