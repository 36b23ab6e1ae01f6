package serverless

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Authorizer is the Lambda handler of the API Gateway REQUEST authorizer in
// front of POST /event-batch. mParticle's webhook can set only the
// Authorization header, so the authorizer reads the key from there and
// checks it against the key list in Secrets Manager or SSM. For a valid key
// it returns the usage plan key, by which API Gateway throttles the request.
//
// API Gateway caches each result by the Authorization header value for the
// authorizer's result TTL, so the function runs only for header values it
// has not seen within that time.
type Authorizer struct {
	cfg     AuthorizerConfig
	secrets *SecretReader
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	keys     keySet
	loadedAt time.Time // zero until the first successful read
}

// NewAuthorizer returns the authorizer handler. It reads the key list on the
// first request, not here, so a Secrets Manager outage during a cold start
// is retried at the next request.
func NewAuthorizer(cfg AuthorizerConfig, secrets *SecretReader, log *slog.Logger) *Authorizer {
	return &Authorizer{cfg: cfg, secrets: secrets, log: log, now: time.Now}
}

// Handle returns an Allow policy for the request's method when the
// Authorization header carries one of the keys, and a Deny policy
// otherwise, for which API Gateway responds 403. It returns an error when
// the key list cannot be read. API Gateway then responds 500, which
// mParticle retries, instead of a 403 that would make it drop the batch.
func (a *Authorizer) Handle(
	ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest,
) (events.APIGatewayCustomAuthorizerResponse, error) {
	keys, err := a.keySet(ctx)
	if err != nil {
		// aws-lambda-go logs the returned error.
		return events.APIGatewayCustomAuthorizerResponse{}, fmt.Errorf("authorize: %w", err)
	}
	sourceIP := req.RequestContext.Identity.SourceIP
	key, err := keyFromAuthorization(header(req, "Authorization"))
	if err != nil {
		a.log.Info("webhook request denied", "reason", err.Error(), "source_ip", sourceIP)
		return policy("anonymous", "Deny", req.MethodArn), nil
	}
	if !keys.contains(key) {
		a.log.Info("webhook request denied", "reason", "unknown key", "source_ip", sourceIP)
		return policy("anonymous", "Deny", req.MethodArn), nil
	}
	id := KeyID(key)
	a.log.Debug("webhook request allowed", "key_id", id, "source_ip", sourceIP)
	resp := policy("webhook-key-"+id, "Allow", req.MethodArn)
	resp.Context = map[string]any{"keyId": id}
	resp.UsageIdentifierKey = a.cfg.UsagePlanKey
	return resp, nil
}

// keySet returns the key list, read again once CacheTTL has passed.
func (a *Authorizer) keySet(ctx context.Context) (keySet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if !a.loadedAt.IsZero() && now.Sub(a.loadedAt) < a.cfg.CacheTTL {
		return a.keys, nil
	}
	value, err := a.secrets.Read(ctx, a.cfg.Keys)
	if err != nil {
		return keySet{}, err
	}
	keys, err := ParseKeys(value)
	if err != nil {
		return keySet{}, fmt.Errorf("webhook keys in %s: %w", a.cfg.Keys, err)
	}
	a.keys = newKeySet(keys)
	a.loadedAt = now
	a.log.Info("webhook keys loaded", "source", a.cfg.Keys.String(), "keys", len(keys))
	return a.keys, nil
}

// header returns the value of the named request header, matching the name
// without regard to case because API Gateway passes names as sent.
func header(req events.APIGatewayCustomAuthorizerRequestTypeRequest, name string) string {
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range req.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[len(v)-1]
		}
	}
	return ""
}

// policy returns an authorizer response whose policy applies effect to
// invoking methodArn.
func policy(principal, effect, methodArn string) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   effect,
				Resource: []string{methodArn},
			}},
		},
	}
}
