package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	defaultOnce sync.Mutex
	defaultTpl  *template
)

// defaultTemplate synthesizes the stack with default settings once.
func defaultTemplate(t *testing.T) template {
	t.Helper()
	defaultOnce.Lock()
	defer defaultOnce.Unlock()
	if defaultTpl == nil {
		tpl := synth(t, nil)
		defaultTpl = &tpl
	}
	return *defaultTpl
}

func TestQueueRetentionAndEncryption(t *testing.T) {
	tpl := defaultTemplate(t)
	deadID, dead := tpl.byPrefix(t, "AWS::SQS::Queue", "DeadLetterQueue")
	_, main := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")

	if got := number(t, main, "MessageRetentionPeriod"); got != 4*24*3600 {
		t.Errorf("queue retention = %vs, want 4 days (345600s)", got)
	}
	if got := number(t, dead, "MessageRetentionPeriod"); got != 14*24*3600 {
		t.Errorf("dead-letter queue retention = %vs, want 14 days (1209600s)", got)
	}
	for name, q := range map[string]resource{"queue": main, "dead-letter queue": dead} {
		if q.Properties["SqsManagedSseEnabled"] != true {
			t.Errorf("%s: SqsManagedSseEnabled = %v, want true", name, q.Properties["SqsManagedSseEnabled"])
		}
		if got := number(t, q, "MaximumMessageSize"); got != 1<<20 {
			t.Errorf("%s: MaximumMessageSize = %v, want 1 MiB", name, got)
		}
	}
	if got := number(t, main, "ReceiveMessageWaitTimeSeconds"); got != 0 {
		t.Errorf("queue ReceiveMessageWaitTimeSeconds = %v, want 0 (the SQS engine short-polls)", got)
	}

	redrive, _ := main.Properties["RedrivePolicy"].(map[string]any)
	if redrive["maxReceiveCount"] != float64(5) {
		t.Errorf("maxReceiveCount = %v, want 5", redrive["maxReceiveCount"])
	}
	if !refersTo(redrive["deadLetterTargetArn"], deadID) {
		t.Errorf("deadLetterTargetArn = %v, want the dead-letter queue's ARN", redrive["deadLetterTargetArn"])
	}
}

func TestQueuesRejectRequestsWithoutTLS(t *testing.T) {
	tpl := defaultTemplate(t)
	policies := tpl.ofType("AWS::SQS::QueuePolicy")
	if len(policies) != 2 {
		t.Fatalf("template has %d queue policies, want 2", len(policies))
	}
	for id, p := range policies {
		text, _ := json.Marshal(p.Properties["PolicyDocument"])
		if !strings.Contains(string(text), `"Effect":"Deny"`) ||
			!strings.Contains(string(text), `"aws:SecureTransport":"false"`) {
			t.Errorf("queue policy %s does not deny requests without TLS: %s", id, text)
		}
	}
}

func TestVisibilityFitsForwarderTimeout(t *testing.T) {
	for _, timeout := range []string{"", "5m", "90s"} {
		t.Run("timeout "+timeout, func(t *testing.T) {
			tpl := defaultTemplate(t)
			if timeout != "" {
				tpl = synth(t, map[string]any{"forwarderTimeout": timeout})
			}
			_, main := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")
			_, fn := tpl.byPrefix(t, "AWS::Lambda::Function", "Forwarder")
			functionTimeout := number(t, fn, "Timeout")
			visibility := number(t, main, "VisibilityTimeout")
			if visibility < 6*functionTimeout {
				t.Errorf("visibility timeout %vs is less than 6 x the function timeout %vs", visibility, functionTimeout)
			}
			envVisibility, err := time.ParseDuration(env(fn)[envVisibility].(string))
			if err != nil {
				t.Fatalf("%s: %v", envVisibility, err)
			}
			if envVisibility.Seconds() != visibility {
				t.Errorf("%s = %s, want the queue's visibility timeout %vs", envVisibility, envVisibility, visibility)
			}
		})
	}
}

// TestIntegrationMapsEveryErrorTo5xx replays API Gateway's selection of an
// integration response for every status code that SQS could return.
func TestIntegrationMapsEveryErrorTo5xx(t *testing.T) {
	tpl := defaultTemplate(t)
	_, method := tpl.byPrefix(t, "AWS::ApiGateway::Method", "WebhookApieventbatchPOST")
	integration, _ := method.Properties["Integration"].(map[string]any)
	var responses []map[string]any
	for _, r := range integration["IntegrationResponses"].([]any) {
		responses = append(responses, r.(map[string]any))
	}

	defaults := 0
	for _, r := range responses {
		if _, ok := r["SelectionPattern"]; !ok {
			defaults++
		}
	}
	if defaults != 1 {
		t.Fatalf("%d integration responses have no selection pattern, want 1 default", defaults)
	}
	var wrong []string
	for code := 100; code <= 599; code++ {
		status := strconv.Itoa(code)
		var matched []string
		chosen := ""
		for _, r := range responses {
			pattern, ok := r["SelectionPattern"].(string)
			if ok && fullMatch(t, pattern, status) {
				matched = append(matched, r["StatusCode"].(string))
			}
			if !ok && chosen == "" {
				chosen = r["StatusCode"].(string)
			}
		}
		if len(matched) > 1 {
			t.Errorf("SQS status %d matches %d selection patterns (%v), want at most 1", code, len(matched), matched)
		}
		if len(matched) == 1 {
			chosen = matched[0]
		}
		switch {
		case code >= 200 && code < 300 && chosen != "200":
			wrong = append(wrong, fmt.Sprintf("%d->%s (want 200)", code, chosen))
		case (code < 200 || code >= 300) && !strings.HasPrefix(chosen, "5"):
			wrong = append(wrong, fmt.Sprintf("%d->%s (want a 5xx that mParticle retries)", code, chosen))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d SQS status codes map to the wrong response, such as %s", len(wrong), strings.Join(wrong[:min(5, len(wrong))], ", "))
	}
}

func TestIntegrationSendsBodyToQueue(t *testing.T) {
	tpl := defaultTemplate(t)
	queueID, _ := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")
	_, method := tpl.byPrefix(t, "AWS::ApiGateway::Method", "WebhookApieventbatchPOST")
	integration, _ := method.Properties["Integration"].(map[string]any)

	if integration["Type"] != "AWS" || integration["IntegrationHttpMethod"] != "POST" {
		t.Errorf("integration type %v, method %v; want AWS and POST", integration["Type"], integration["IntegrationHttpMethod"])
	}
	uri, _ := json.Marshal(integration["Uri"])
	if !strings.Contains(string(uri), ":sqs:path/") || !refersTo(integration["Uri"], queueID) {
		t.Errorf("integration URI %s is not the SQS path of the queue", uri)
	}
	templates, _ := integration["RequestTemplates"].(map[string]any)
	if templates["application/json"] != sendMessageTemplate {
		t.Errorf("request template = %v, want %q", templates["application/json"], sendMessageTemplate)
	}
	if integration["PassthroughBehavior"] != "NEVER" {
		t.Errorf("PassthroughBehavior = %v, want NEVER", integration["PassthroughBehavior"])
	}
	params, _ := integration["RequestParameters"].(map[string]any)
	if params["integration.request.header.Content-Type"] != "'application/x-www-form-urlencoded'" {
		t.Errorf("integration Content-Type = %v, want the form encoding of the query protocol",
			params["integration.request.header.Content-Type"])
	}
	if method.Properties["RequestValidatorId"] == nil || method.Properties["RequestModels"] == nil {
		t.Error("the method does not validate that the body is a JSON object")
	}
}

func TestQueueRoleOnlySendsMessages(t *testing.T) {
	tpl := defaultTemplate(t)
	queueID, _ := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")
	roleID, role := tpl.byPrefix(t, "AWS::IAM::Role", "WebhookQueueRole")
	trust, _ := json.Marshal(role.Properties["AssumeRolePolicyDocument"])
	if !strings.Contains(string(trust), "apigateway.amazonaws.com") {
		t.Errorf("role trust policy %s does not name API Gateway", trust)
	}
	statements := tpl.policyStatements(roleID)
	if len(statements) != 1 {
		t.Fatalf("role has %d policy statements, want 1: %v", len(statements), statements)
	}
	if a := actions(statements[0]); !reflect.DeepEqual(a, []string{"sqs:SendMessage"}) {
		t.Errorf("role actions = %v, want [sqs:SendMessage]", a)
	}
	if !refersTo(statements[0]["Resource"], queueID) {
		t.Errorf("role resource = %v, want the queue", statements[0]["Resource"])
	}
	_, method := tpl.byPrefix(t, "AWS::ApiGateway::Method", "WebhookApieventbatchPOST")
	if !refersTo(method.Properties["Integration"], roleID) {
		t.Error("the integration does not use the role")
	}
}

func TestWebhookAuthentication(t *testing.T) {
	tpl := defaultTemplate(t)
	authorizerID, authorizer := tpl.one(t, "AWS::ApiGateway::Authorizer")
	_, method := tpl.byPrefix(t, "AWS::ApiGateway::Method", "WebhookApieventbatchPOST")
	fnID, fn := tpl.byPrefix(t, "AWS::Lambda::Function", "Authorizer")

	if method.Properties["AuthorizationType"] != "CUSTOM" || !refersTo(method.Properties["AuthorizerId"], authorizerID) {
		t.Errorf("method authorization %v with %v, want CUSTOM with the authorizer",
			method.Properties["AuthorizationType"], method.Properties["AuthorizerId"])
	}
	if method.Properties["ApiKeyRequired"] != true {
		t.Error("method does not require an API key, so the usage plan would not throttle it")
	}
	if authorizer.Properties["Type"] != "REQUEST" {
		t.Errorf("authorizer type = %v, want REQUEST", authorizer.Properties["Type"])
	}
	if got := authorizer.Properties["IdentitySource"]; got != "method.request.header.Authorization" {
		t.Errorf("identity source = %v, want the Authorization header, the only header mParticle sets", got)
	}
	if got := number(t, authorizer, "AuthorizerResultTtlInSeconds"); got != 300 {
		t.Errorf("result TTL = %vs, want 300s", got)
	}
	if !refersTo(authorizer.Properties["AuthorizerUri"], fnID) {
		t.Error("the authorizer does not invoke the authorizer function")
	}
	if env(fn)[envHandler] != "authorize" {
		t.Errorf("authorizer function %s = %v, want authorize", envHandler, env(fn)[envHandler])
	}

	_, api := tpl.one(t, "AWS::ApiGateway::RestApi")
	if api.Properties["ApiKeySourceType"] != "AUTHORIZER" {
		t.Errorf("ApiKeySourceType = %v, want AUTHORIZER, so X-API-Key is not a credential",
			api.Properties["ApiKeySourceType"])
	}
	_, key := tpl.one(t, "AWS::ApiGateway::ApiKey")
	if !reflect.DeepEqual(key.Properties["Value"], env(fn)[envUsagePlanKey]) {
		t.Errorf("API key value %v differs from the authorizer's %s %v",
			key.Properties["Value"], envUsagePlanKey, env(fn)[envUsagePlanKey])
	}
	_, plan := tpl.one(t, "AWS::ApiGateway::UsagePlan")
	throttle, _ := plan.Properties["Throttle"].(map[string]any)
	if throttle["RateLimit"] != float64(DefaultThrottleRate) || throttle["BurstLimit"] != float64(DefaultThrottleBurst) {
		t.Errorf("usage plan throttle = %v, want rate %d and burst %d", throttle, DefaultThrottleRate, DefaultThrottleBurst)
	}
	_, planKey := tpl.one(t, "AWS::ApiGateway::UsagePlanKey")
	if planKey.Properties["KeyType"] != "API_KEY" {
		t.Errorf("usage plan key type = %v, want API_KEY", planKey.Properties["KeyType"])
	}

	secretID, _ := tpl.byPrefix(t, "AWS::SecretsManager::Secret", "WebhookKeys")
	if !refersTo(env(fn)[envAPIKeysSecret], secretID) {
		t.Errorf("%s = %v, want the webhook keys secret", envAPIKeysSecret, env(fn)[envAPIKeysSecret])
	}
	roleID := fn.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	if !allows(tpl.policyStatements(roleID), "secretsmanager:GetSecretValue", secretID) {
		t.Error("the authorizer may not read the webhook keys secret")
	}
}

func TestThrottledRequestsGet503(t *testing.T) {
	tpl := defaultTemplate(t)
	_, resp := tpl.one(t, "AWS::ApiGateway::GatewayResponse")
	if resp.Properties["ResponseType"] != "THROTTLED" || resp.Properties["StatusCode"] != "503" {
		t.Errorf("gateway response %v -> %v, want THROTTLED -> 503", resp.Properties["ResponseType"], resp.Properties["StatusCode"])
	}
}

func TestForwarderFunction(t *testing.T) {
	tpl := defaultTemplate(t)
	fnID, fn := tpl.byPrefix(t, "AWS::Lambda::Function", "Forwarder")
	queueID, _ := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")
	deadID, _ := tpl.byPrefix(t, "AWS::SQS::Queue", "DeadLetterQueue")
	secretID, _ := tpl.byPrefix(t, "AWS::SecretsManager::Secret", "IterableApiKey")

	if fn.Properties["Runtime"] != "provided.al2023" || fn.Properties["Handler"] != "bootstrap" {
		t.Errorf("runtime %v, handler %v; want provided.al2023 and bootstrap", fn.Properties["Runtime"], fn.Properties["Handler"])
	}
	if !reflect.DeepEqual(fn.Properties["Architectures"], []any{"arm64"}) {
		t.Errorf("architectures = %v, want [arm64]", fn.Properties["Architectures"])
	}
	if got := number(t, fn, "ReservedConcurrentExecutions"); got != 1 {
		t.Errorf("reserved concurrency = %v, want 1 so that runs never overlap", got)
	}
	if got := number(t, fn, "Timeout"); got != 900 {
		t.Errorf("timeout = %vs, want 900s", got)
	}
	vars := env(fn)
	if vars[envHandler] != "forward" {
		t.Errorf("%s = %v, want forward", envHandler, vars[envHandler])
	}
	if !refersTo(vars[envQueue], queueID) {
		t.Errorf("%s = %v, want the queue's URL", envQueue, vars[envQueue])
	}
	if !refersTo(vars[envIterableKeySecret], secretID) {
		t.Errorf("%s = %v, want the Iterable key secret", envIterableKeySecret, vars[envIterableKeySecret])
	}

	_, invokeConfig := tpl.one(t, "AWS::Lambda::EventInvokeConfig")
	if !refersTo(invokeConfig.Properties["FunctionName"], fnID) || number(t, invokeConfig, "MaximumRetryAttempts") != 0 {
		t.Errorf("asynchronous invoke config %v, want 0 retries for the forwarder", invokeConfig.Properties)
	}

	roleID := fn.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	statements := tpl.policyStatements(roleID)
	for _, want := range []struct{ action, resource string }{
		{"sqs:ReceiveMessage", queueID},
		{"sqs:DeleteMessage", queueID},
		{"sqs:ChangeMessageVisibility", queueID},
		{"sqs:SendMessage", queueID},
		{"sqs:GetQueueUrl", deadID},
		{"secretsmanager:GetSecretValue", secretID},
	} {
		if !allows(statements, want.action, want.resource) {
			t.Errorf("the forwarder may not %s on %s", want.action, want.resource)
		}
	}
}

func TestForwardSchedule(t *testing.T) {
	for _, tt := range []struct{ every, expression string }{
		{"", "rate(1 hour)"},
		{"15m", "rate(15 minutes)"},
	} {
		t.Run(tt.expression, func(t *testing.T) {
			tpl := defaultTemplate(t)
			if tt.every != "" {
				tpl = synth(t, map[string]any{"forwardEvery": tt.every})
			}
			fnID, _ := tpl.byPrefix(t, "AWS::Lambda::Function", "Forwarder")
			_, rule := tpl.one(t, "AWS::Events::Rule")
			if rule.Properties["ScheduleExpression"] != tt.expression {
				t.Errorf("schedule = %v, want %s", rule.Properties["ScheduleExpression"], tt.expression)
			}
			targets, _ := rule.Properties["Targets"].([]any)
			if len(targets) != 1 {
				t.Fatalf("rule has %d targets, want 1", len(targets))
			}
			target := targets[0].(map[string]any)
			if !refersTo(target["Arn"], fnID) {
				t.Errorf("rule target %v, want the forwarder", target["Arn"])
			}
			retry, _ := target["RetryPolicy"].(map[string]any)
			if retry["MaximumRetryAttempts"] != float64(0) {
				t.Errorf("target retry attempts = %v, want 0", retry["MaximumRetryAttempts"])
			}
		})
	}
}

func TestAlarms(t *testing.T) {
	const topic = "arn:aws:sns:us-east-1:123456789012:layover-alarms"
	tpl := synth(t, map[string]any{"alarmTopicArn": topic})
	queueID, _ := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")
	deadID, _ := tpl.byPrefix(t, "AWS::SQS::Queue", "DeadLetterQueue")
	fnID, _ := tpl.byPrefix(t, "AWS::Lambda::Function", "Forwarder")

	tests := []struct {
		prefix, metric, dimensionOf string
		threshold                   float64
	}{
		{"DeadLetterQueueNotEmpty", "ApproximateNumberOfMessagesVisible", deadID, 1},
		{"OldestMessageTooOld", "ApproximateAgeOfOldestMessage", queueID, DefaultMaxMessageAge.Seconds()},
		{"ForwarderFailing", "Errors", fnID, 1},
		{"WebhookServerErrors", "5XXError", "", 1},
	}
	for _, tt := range tests {
		_, alarm := tpl.byPrefix(t, "AWS::CloudWatch::Alarm", tt.prefix)
		if alarm.Properties["MetricName"] != tt.metric {
			t.Errorf("%s: metric %v, want %s", tt.prefix, alarm.Properties["MetricName"], tt.metric)
		}
		if got := number(t, alarm, "Threshold"); got != tt.threshold {
			t.Errorf("%s: threshold %v, want %v", tt.prefix, got, tt.threshold)
		}
		if tt.dimensionOf != "" && !refersTo(alarm.Properties["Dimensions"], tt.dimensionOf) {
			t.Errorf("%s: dimensions %v, want %s", tt.prefix, alarm.Properties["Dimensions"], tt.dimensionOf)
		}
		if !reflect.DeepEqual(alarm.Properties["AlarmActions"], []any{topic}) {
			t.Errorf("%s: alarm actions %v, want [%s]", tt.prefix, alarm.Properties["AlarmActions"], topic)
		}
	}
}

func TestExistingKeySources(t *testing.T) {
	const webhookArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:layover/webhook-keys-AbCdEf"
	tpl := synth(t, map[string]any{
		"iterableKeyParameter": "/layover/iterable-api-key",
		"webhookKeysSecret":    webhookArn,
		"maxReceiveCount":      "3",
		"mappingFile":          "mapping.json",
	})
	if n := len(tpl.ofType("AWS::SecretsManager::Secret")); n != 0 {
		t.Errorf("template creates %d secrets, want 0 when both sources exist", n)
	}

	_, forwarder := tpl.byPrefix(t, "AWS::Lambda::Function", "Forwarder")
	_, authorizer := tpl.byPrefix(t, "AWS::Lambda::Function", "Authorizer")
	if got := env(forwarder)[envIterableKeyParameter]; got != "/layover/iterable-api-key" {
		t.Errorf("%s = %v, want the parameter name", envIterableKeyParameter, got)
	}
	if _, ok := env(forwarder)[envIterableKeySecret]; ok {
		t.Errorf("%s is set next to %s", envIterableKeySecret, envIterableKeyParameter)
	}
	if got := env(forwarder)[envMapping]; got != "/var/task/mapping.json" {
		t.Errorf("%s = %v, want /var/task/mapping.json", envMapping, got)
	}
	if got := env(authorizer)[envAPIKeysSecret]; got != webhookArn {
		t.Errorf("%s = %v, want %s", envAPIKeysSecret, got, webhookArn)
	}

	forwarderRole := forwarder.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	if !allows(tpl.policyStatements(forwarderRole), "ssm:GetParameter", "parameter/layover/iterable-api-key") {
		t.Error("the forwarder may not read the Iterable key parameter")
	}
	authorizerRole := authorizer.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	if !allows(tpl.policyStatements(authorizerRole), "secretsmanager:GetSecretValue", webhookArn) {
		t.Error("the authorizer may not read the existing webhook keys secret")
	}
	_, main := tpl.byPrefix(t, "AWS::SQS::Queue", "Queue")
	if redrive := main.Properties["RedrivePolicy"].(map[string]any); redrive["maxReceiveCount"] != float64(3) {
		t.Errorf("maxReceiveCount = %v, want 3", redrive["maxReceiveCount"])
	}
}
