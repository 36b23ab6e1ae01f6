package sqs

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// keepConnection is an SQS client option that hides the WriteTo method of
// request bodies from net/http, so that a request cannot close the
// connection that carries its own response.
//
// After sending a body of known length, the write loop of net/http copies
// the body once more to check that nothing is left. The SDK closes the body
// as soon as the response headers arrive, and the WriteTo of a closed SDK
// body returns io.EOF as an error (smithy-go v1.28.9). When the server
// responds before that last copy, which is common on a loopback
// connection, net/http closes the connection. A response body still being
// read from it then fails with "use of closed network connection", and the
// SDK retries the request: a lost ReceiveMessage response leaves its
// messages in flight until their visibility timeout. Without WriteTo,
// io.Copy calls Read, which returns a plain io.EOF after Close.
func keepConnection(o *sqs.Options) {
	if o.HTTPClient != nil {
		o.HTTPClient = readOnlyBodyClient{next: o.HTTPClient}
	}
}

// readOnlyBodyClient sends requests through next with a body that has only
// the methods Read and Close.
type readOnlyBodyClient struct {
	next sqs.HTTPClient
}

// Do sends req through the wrapped client.
func (c readOnlyBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = struct{ io.ReadCloser }{req.Body}
	}
	return c.next.Do(req)
}
