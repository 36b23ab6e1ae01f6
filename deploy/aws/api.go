package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

const (
	webhookPath = "/event-batch"
	stageName   = "prod"
	// retryAfterSeconds is sent in Retry-After with every 5xx response.
	retryAfterSeconds = "'5'"
)

// sendMessageTemplate turns the request body into an SQS SendMessage call
// of the AWS query protocol. The body becomes the message unchanged:
// urlEncode escapes it for the form, and SQS decodes it again.
const sendMessageTemplate = "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"

// Integration responses. API Gateway matches SelectionPattern against the
// status code of the SQS response, and uses the response without a pattern
// when none matches. Only a 2xx from SQS becomes 200. Every SQS error
// becomes a 5xx, which mParticle retries, and never a 4xx, which it drops.
var integrationResponses = []*awsapigateway.IntegrationResponse{
	{
		SelectionPattern: jsii.String(`2\d{2}`),
		StatusCode:       jsii.String("200"),
		ResponseTemplates: &map[string]*string{
			"application/json": jsii.String(`{"id":"$input.path('$.SendMessageResponse.SendMessageResult.MessageId')"}`),
		},
	},
	{
		SelectionPattern:   jsii.String(`5\d{2}`),
		StatusCode:         jsii.String("503"),
		ResponseParameters: &map[string]*string{"method.response.header.Retry-After": jsii.String(retryAfterSeconds)},
		ResponseTemplates: &map[string]*string{
			"application/json": jsii.String(`{"error":"the queue is unavailable; the batch was not stored"}`),
		},
	},
	{
		// 4xx from SQS, such as a message over 1 MiB or a throttled or
		// misconfigured request, and anything else.
		StatusCode:         jsii.String("500"),
		ResponseParameters: &map[string]*string{"method.response.header.Retry-After": jsii.String(retryAfterSeconds)},
		ResponseTemplates: &map[string]*string{
			"application/json": jsii.String(`{"error":"the queue rejected the batch; it was not stored"}`),
		},
	},
}

// accessLogFormat is one JSON line per request. keyId is the authorizer's
// KeyID of the webhook key, never the key.
const accessLogFormat = `{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",` +
	`"requestTime":"$context.requestTime","method":"$context.httpMethod","path":"$context.resourcePath",` +
	`"status":"$context.status","responseLength":"$context.responseLength",` +
	`"keyId":"$context.authorizer.keyId","authorizerError":"$context.authorizer.error",` +
	`"integrationStatus":"$context.integration.status","integrationError":"$context.integration.error",` +
	`"error":"$context.error.message"}`

// usagePlanKeyValue returns the value of the usage plan's API key: a fixed
// prefix and the UUID of the stack's ID. The authorizer returns it as
// usageIdentifierKey. The API reads API keys only from the authorizer, not
// from X-API-Key, so the value is an identifier for metering, not a
// credential.
func usagePlanKeyValue() *string {
	uuid := awscdk.Fn_Select(jsii.Number(2), awscdk.Fn_Split(jsii.String("/"), awscdk.Aws_STACK_ID(), nil))
	return awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("layover-usage-"), uuid})
}

// newWebhookAPI defines the REST API with POST /event-batch, which stores
// the body in the queue with no function in the request path.
func newWebhookAPI(stack awscdk.Stack, cfg Config, q awssqs.Queue, authorizerFn awslambda.IFunction) awsapigateway.RestApi {
	accessLogs := newLogGroup(stack, "WebhookAccessLogs")
	api := awsapigateway.NewRestApi(stack, jsii.String("WebhookApi"), &awsapigateway.RestApiProps{
		Description:      jsii.String("Layover: mParticle webhook batches into SQS"),
		EndpointTypes:    &[]awsapigateway.EndpointType{awsapigateway.EndpointType_REGIONAL},
		ApiKeySourceType: awsapigateway.ApiKeySourceType_AUTHORIZER,
		// Access logs need the account's API Gateway CloudWatch role.
		CloudWatchRole: jsii.Bool(true),
		DeployOptions: &awsapigateway.StageOptions{
			StageName: jsii.String(stageName),
			// Stage throttling applies to every request of the stage, and
			// the usage plan only to requests that the authorizer allowed.
			ThrottlingRateLimit:  jsii.Number(cfg.ThrottleRate),
			ThrottlingBurstLimit: jsii.Number(float64(cfg.ThrottleBurst)),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat:      awsapigateway.AccessLogFormat_Custom(jsii.String(accessLogFormat)),
		},
	})
	authorizer := awsapigateway.NewRequestAuthorizer(stack, jsii.String("WebhookAuthorizer"),
		&awsapigateway.RequestAuthorizerProps{
			Handler:         authorizerFn,
			IdentitySources: &[]*string{awsapigateway.IdentitySource_Header(jsii.String("Authorization"))},
			ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(cfg.AuthorizerCacheTTL.Seconds())),
		})

	api.Root().AddResource(jsii.String(webhookPath[1:]), nil).AddMethod(jsii.String("POST"),
		sqsIntegration(stack, q), &awsapigateway.MethodOptions{
			Authorizer:     authorizer,
			ApiKeyRequired: jsii.Bool(true),
			RequestValidator: api.AddRequestValidator(jsii.String("BodyValidator"),
				&awsapigateway.RequestValidatorOptions{ValidateRequestBody: jsii.Bool(true)}),
			RequestModels: &map[string]awsapigateway.IModel{"application/json": batchModel(api)},
			MethodResponses: &[]*awsapigateway.MethodResponse{
				{StatusCode: jsii.String("200")},
				retryableResponse("500"),
				retryableResponse("503"),
			},
		})
	addUsagePlan(stack, cfg, api)
	addGatewayResponses(api)
	return api
}

func retryableResponse(status string) *awsapigateway.MethodResponse {
	return &awsapigateway.MethodResponse{
		StatusCode:         &status,
		ResponseParameters: &map[string]*bool{"method.response.header.Retry-After": jsii.Bool(true)},
	}
}

// batchModel accepts any JSON object, the shape of an mParticle batch. The
// validator then responds 400 to a body that is not one, as `layover serve`
// does, because no retry could make it valid.
func batchModel(api awsapigateway.RestApi) awsapigateway.Model {
	return api.AddModel(jsii.String("Batch"), &awsapigateway.ModelOptions{
		ContentType: jsii.String("application/json"),
		Schema: &awsapigateway.JsonSchema{
			Schema: awsapigateway.JsonSchemaVersion_DRAFT4,
			Title:  jsii.String("mParticleBatch"),
			Type:   awsapigateway.JsonSchemaType_OBJECT,
		},
	})
}

// sqsIntegration sends the body to the queue with SendMessage, signed with
// a role that may do nothing else.
func sqsIntegration(stack awscdk.Stack, q awssqs.Queue) awsapigateway.Integration {
	role := awsiam.NewRole(stack, jsii.String("WebhookQueueRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("apigateway.amazonaws.com"), nil),
		Description: jsii.String("Layover: lets API Gateway send webhook bodies to the queue"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("sqs:SendMessage"),
		Resources: &[]*string{q.QueueArn()},
	}))
	return awsapigateway.NewAwsIntegration(&awsapigateway.AwsIntegrationProps{
		Service:               jsii.String("sqs"),
		IntegrationHttpMethod: jsii.String("POST"),
		Path:                  jsii.String(*awscdk.Aws_ACCOUNT_ID() + "/" + *q.QueueName()),
		Options: &awsapigateway.IntegrationOptions{
			CredentialsRole: role,
			// A body of another content type gets 415 instead of reaching
			// SQS untransformed.
			PassthroughBehavior: awsapigateway.PassthroughBehavior_NEVER,
			RequestParameters: &map[string]*string{
				"integration.request.header.Content-Type": jsii.String("'application/x-www-form-urlencoded'"),
				"integration.request.header.Accept":       jsii.String("'application/json'"),
			},
			RequestTemplates:     &map[string]*string{"application/json": jsii.String(sendMessageTemplate)},
			IntegrationResponses: &integrationResponses,
		},
	})
}

// addUsagePlan throttles the webhook through a usage plan whose API key the
// authorizer returns for every allowed request.
func addUsagePlan(stack awscdk.Stack, cfg Config, api awsapigateway.RestApi) {
	key := awsapigateway.NewApiKey(stack, jsii.String("UsagePlanKey"), &awsapigateway.ApiKeyProps{
		Description: jsii.String("Layover: usage identifier that the webhook authorizer returns"),
		Value:       usagePlanKeyValue(),
		Enabled:     jsii.Bool(true),
	})
	plan := api.AddUsagePlan(jsii.String("WebhookUsagePlan"), &awsapigateway.UsagePlanProps{
		Description: jsii.String("Layover: throttles mParticle webhook requests"),
		Throttle: &awsapigateway.ThrottleSettings{
			RateLimit:  jsii.Number(cfg.ThrottleRate),
			BurstLimit: jsii.Number(float64(cfg.ThrottleBurst)),
		},
		ApiStages: &[]*awsapigateway.UsagePlanPerApiStage{{Api: api, Stage: api.DeploymentStage()}},
	})
	plan.AddApiKey(key, nil)
}

// addGatewayResponses makes API Gateway respond 503 to throttled requests
// instead of 429, because mParticle documents retries for 5xx and not for
// 429.
func addGatewayResponses(api awsapigateway.RestApi) {
	api.AddGatewayResponse(jsii.String("Throttled"), &awsapigateway.GatewayResponseOptions{
		Type:            awsapigateway.ResponseType_THROTTLED(),
		StatusCode:      jsii.String("503"),
		ResponseHeaders: &map[string]*string{"Retry-After": jsii.String(retryAfterSeconds)},
		Templates: &map[string]*string{
			"application/json": jsii.String(`{"error":"too many requests; retry later"}`),
		},
	})
}
