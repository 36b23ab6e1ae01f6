package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/layover-dev/layover/internal/testenv"
	"github.com/layover-dev/layover/iterable/iterabletest"
	"github.com/layover-dev/layover/queue"
	"github.com/layover-dev/layover/queue/sqs"
	"github.com/layover-dev/layover/serverless"
)

// scheduledEvent is the shape of the event that an EventBridge schedule
// sends. The forwarder ignores it.
var scheduledEvent = map[string]any{
	"version":     "0",
	"id":          "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
	"detail-type": "Scheduled Event",
	"source":      "aws.events",
	"account":     "123456789012",
	"time":        "2026-03-01T12:00:00Z",
	"region":      "us-east-1",
	"resources":   []string{"arn:aws:events:us-east-1:123456789012:rule/layover-forward"},
	"detail":      map[string]any{},
}

// forwardSetup is a queue pair in the SQS emulator, an Iterable simulator
// and the forwarder's environment for the emulator.
type forwardSetup struct {
	client   *awssqs.Client
	queueURL string
	sim      *iterabletest.Server
	env      map[string]string
}

func newForwardSetup(t *testing.T) *forwardSetup {
	t.Helper()
	endpoint := testenv.SQSEndpoint(t)
	client := awssqs.New(awssqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	name := "layover-lambda-" + strings.ToLower(rand.Text()[:12])
	queueURL, err := sqs.CreateQueues(ctx, client, name, queue.Options{})
	if err != nil {
		t.Fatalf("CreateQueues: %v", err)
	}
	t.Cleanup(func() { deleteQueues(t, client, name) })

	sim := iterabletest.New(iterabletest.Options{RateLimit: -1})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })

	return &forwardSetup{client: client, queueURL: queueURL, sim: sim, env: map[string]string{
		serverless.EnvHandler:     serverless.HandlerForward,
		serverless.EnvQueue:       queueURL,
		serverless.EnvIterableKey: iterabletest.DefaultAPIKey,
		serverless.EnvIterableURL: simURL,
		"AWS_ENDPOINT_URL_SQS":    endpoint,
		// Any other AWS service would go to the emulator too, never out.
		"AWS_ENDPOINT_URL":      endpoint,
		"AWS_REGION":            "us-east-1",
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
		// The emulator gives each invocation this deadline, in seconds.
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "120",
		serverless.EnvLogFormat:       "text",
	}}
}

func deleteQueues(t *testing.T, client *awssqs.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{name, name + sqs.DeadLetterSuffix} {
		out, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(n)})
		if err == nil {
			_, err = client.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
		}
		if err != nil {
			t.Logf("delete test queue %s: %v", n, err)
		}
	}
}

// sendRaw stores bodies with plain SendMessage calls and no message
// attributes, as API Gateway's SQS integration does.
func (s *forwardSetup) sendRaw(t *testing.T, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		_, err := s.client.SendMessage(t.Context(), &awssqs.SendMessageInput{
			QueueUrl: aws.String(s.queueURL), MessageBody: aws.String(b),
		})
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
}

func (s *forwardSetup) stats(t *testing.T) queue.Stats {
	t.Helper()
	q, err := sqs.OpenWithClient(t.Context(), s.client, s.queueURL, queue.Options{})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	defer q.Close()
	st, err := q.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// screenViews returns an mParticle batch of n screen views of one user,
// with source_message_id "<user>-<i>" on each event.
func screenViews(user string, n int) string {
	events := make([]string, n)
	for i := range events {
		events[i] = fmt.Sprintf(`{"event_type":"screen_view","data":{"screen_name":"Screen %d",`+
			`"source_message_id":"%s-%d","timestamp_unixtime_ms":1772366400000}}`, i, user, i)
	}
	return fmt.Sprintf(`{"environment":"production","user_identities":`+
		`[{"identity_type":"customer_id","identity":%q}],"events":[%s]}`, user, strings.Join(events, ","))
}

func decodeResult(t *testing.T, inv invocation) serverless.RunResult {
	t.Helper()
	if inv.status != 200 {
		t.Fatalf("invoke status %d: %s", inv.status, inv.body)
	}
	if msg := inv.functionError(); msg != "" {
		t.Fatalf("function error: %s", msg)
	}
	var r serverless.RunResult
	if err := json.Unmarshal(inv.body, &r); err != nil {
		t.Fatalf("decode result %s: %v", inv.body, err)
	}
	return r
}

func TestForwardUnderEmulator(t *testing.T) {
	s := newForwardSetup(t)
	s.sendRaw(t, screenViews("user-a", 5), screenViews("user-b", 5), screenViews("user-c", 5))
	rie := startEmulator(t, s.env)

	r := decodeResult(t, rie.invoke(t, scheduledEvent))
	if r.Received != 3 || r.Deleted != 3 {
		t.Errorf("received %d and deleted %d messages, want 3 and 3", r.Received, r.Deleted)
	}
	if r.Delivered != 15 {
		t.Errorf("delivered %d events, want 15", r.Delivered)
	}
	if r.Rejected != 0 || r.Poison != 0 {
		t.Errorf("rejected %d events and %d messages are poison, want 0 and 0", r.Rejected, r.Poison)
	}
	if n := s.sim.EventCount(iterabletest.DefaultAPIKey); n != 15 {
		t.Errorf("simulator stored %d events, want 15", n)
	}
	for _, e := range s.sim.Events(iterabletest.DefaultAPIKey) {
		if !strings.HasPrefix(e.ID, "user-") {
			t.Errorf("event id %q is not built from source_message_id", e.ID)
			break
		}
	}
	if st := s.stats(t); st.Visible != 0 || st.InFlight != 0 {
		t.Errorf("queue after the run: %d visible, %d in flight; want 0 and 0", st.Visible, st.InFlight)
	}

	// A second scheduled run finds the queue empty and still succeeds.
	again := decodeResult(t, rie.invoke(t, scheduledEvent))
	if again.Received != 0 || again.Delivered != 0 {
		t.Errorf("second run received %d messages and delivered %d events, want 0 and 0",
			again.Received, again.Delivered)
	}
}

func TestForwardUnderEmulatorIterableDown(t *testing.T) {
	s := newForwardSetup(t)
	s.env[serverless.EnvRetryBudget] = "1s"
	s.sendRaw(t, screenViews("user-d", 3), screenViews("user-e", 3))
	if err := s.sim.InjectFault(iterabletest.Fault{Status: 503, Body: iterabletest.ServiceUnavailablePage}); err != nil {
		t.Fatalf("InjectFault: %v", err)
	}
	rie := startEmulator(t, s.env)

	inv := rie.invoke(t, scheduledEvent)
	msg := inv.functionError()
	if !strings.Contains(msg, "messages kept for the next run") {
		t.Fatalf("invocation during an outage returned %s; want a function error saying the messages are kept", inv.body)
	}
	st := s.stats(t)
	if st.Visible != 2 || st.InFlight != 0 {
		t.Errorf("queue after the outage: %d visible, %d in flight; want 2 and 0 (released)", st.Visible, st.InFlight)
	}
	if st.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered during the outage, want 0", st.DeadLettered)
	}

	s.sim.ClearFaults()
	r := decodeResult(t, rie.invoke(t, scheduledEvent))
	if r.Delivered != 6 || r.Deleted != 2 {
		t.Errorf("run after the outage delivered %d events and deleted %d messages, want 6 and 2", r.Delivered, r.Deleted)
	}
	if st := s.stats(t); st.Visible != 0 || st.InFlight != 0 {
		t.Errorf("queue after recovery: %d visible, %d in flight; want 0 and 0", st.Visible, st.InFlight)
	}
}

func TestAuthorizeUnderEmulator(t *testing.T) {
	rie := startEmulator(t, map[string]string{
		serverless.EnvHandler:      serverless.HandlerAuthorize,
		serverless.EnvAPIKeys:      "old-key-1,new-key-2",
		serverless.EnvUsagePlanKey: "usage-plan-key-0123456789",
		"AWS_REGION":               "us-east-1",
		"AWS_ENDPOINT_URL":         "http://127.0.0.1:9",
	})
	const methodArn = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/POST/event-batch"
	request := func(authorization string) map[string]any {
		return map[string]any{
			"type": "REQUEST", "methodArn": methodArn, "resource": "/event-batch",
			"path": "/event-batch", "httpMethod": "POST",
			"headers":        map[string]string{"Authorization": authorization, "Content-Type": "application/json"},
			"requestContext": map[string]any{"identity": map[string]any{"sourceIp": "192.0.2.10"}},
		}
	}
	type statement struct {
		Action   []string
		Effect   string
		Resource []string
	}
	type response struct {
		PrincipalID    string `json:"principalId"`
		PolicyDocument struct {
			Version   string
			Statement []statement
		} `json:"policyDocument"`
		Context            map[string]any `json:"context"`
		UsageIdentifierKey string         `json:"usageIdentifierKey"`
	}
	decide := func(authorization string) response {
		t.Helper()
		inv := rie.invoke(t, request(authorization))
		if inv.status != 200 || inv.functionError() != "" {
			t.Fatalf("invoke: status %d, body %s", inv.status, inv.body)
		}
		var r response
		if err := json.Unmarshal(inv.body, &r); err != nil {
			t.Fatalf("decode %s: %v", inv.body, err)
		}
		if r.PolicyDocument.Version != "2012-10-17" || len(r.PolicyDocument.Statement) != 1 {
			t.Fatalf("policy document %s is not one statement of version 2012-10-17", inv.body)
		}
		return r
	}

	allowed := decide("Bearer new-key-2")
	if st := allowed.PolicyDocument.Statement[0]; st.Effect != "Allow" || st.Resource[0] != methodArn {
		t.Errorf("valid key: statement %+v, want Allow on %s", st, methodArn)
	}
	if allowed.UsageIdentifierKey != "usage-plan-key-0123456789" {
		t.Errorf("valid key: usageIdentifierKey %q, want the usage plan key", allowed.UsageIdentifierKey)
	}
	if allowed.Context["keyId"] != serverless.KeyID("new-key-2") {
		t.Errorf("valid key: context keyId %v, want %s", allowed.Context["keyId"], serverless.KeyID("new-key-2"))
	}

	denied := decide("Bearer stolen-key")
	if st := denied.PolicyDocument.Statement[0]; st.Effect != "Deny" {
		t.Errorf("wrong key: effect %s, want Deny", st.Effect)
	}
	if denied.UsageIdentifierKey != "" {
		t.Errorf("wrong key: usageIdentifierKey %q, want none", denied.UsageIdentifierKey)
	}
}
