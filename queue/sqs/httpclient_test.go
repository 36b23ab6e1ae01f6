package sqs

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// bodyKeepingClient is an HTTP client that reads each request body up to
// its Content-Length, as net/http sends it, returns a GetQueueUrl result
// and keeps the body for a later read.
type bodyKeepingClient struct {
	t      *testing.T
	bodies []io.ReadCloser
}

func (c *bodyKeepingClient) Do(req *http.Request) (*http.Response, error) {
	sent, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
	if err != nil {
		c.t.Errorf("read request body: %v", err)
	}
	if int64(len(sent)) != req.ContentLength {
		c.t.Errorf("request body has %d bytes, Content-Length is %d", len(sent), req.ContentLength)
	}
	c.bodies = append(c.bodies, req.Body)
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(`{"QueueUrl":"http://127.0.0.1:1/000000000000/q"}`)),
		Request:    req,
	}, nil
}

// TestKeepConnectionBodyAfterResponse repeats the check that net/http's
// write loop makes after sending a body, once the SDK has closed the body
// on receiving the response. An error there makes net/http close the
// connection while the response body may still be unread.
func TestKeepConnectionBodyAfterResponse(t *testing.T) {
	fake := &bodyKeepingClient{t: t}
	client := sqs.New(sqs.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String("http://127.0.0.1:1"),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:       fake,
		RetryMaxAttempts: 1,
	})
	out, err := client.GetQueueUrl(t.Context(), &sqs.GetQueueUrlInput{
		QueueName: aws.String("q"),
	}, keepConnection)
	if err != nil {
		t.Fatalf("GetQueueUrl: %v", err)
	}
	if got := aws.ToString(out.QueueUrl); got != "http://127.0.0.1:1/000000000000/q" {
		t.Errorf("QueueUrl = %q, want the URL of the response", got)
	}
	if len(fake.bodies) != 1 {
		t.Fatalf("client sent %d requests, want 1", len(fake.bodies))
	}
	n, err := io.Copy(io.Discard, fake.bodies[0])
	if err != nil {
		t.Errorf("copy of the request body after the response: %v, want nil", err)
	}
	if n != 0 {
		t.Errorf("copy of the request body after the response read %d bytes, want 0", n)
	}
}
