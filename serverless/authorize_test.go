package serverless

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

const testMethodArn = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod/POST/event-batch"

func authRequest(headers map[string]string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type:       "REQUEST",
		MethodArn:  testMethodArn,
		HTTPMethod: "POST",
		Path:       "/event-batch",
		Headers:    headers,
	}
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestAuthorizerDecisions(t *testing.T) {
	a := NewAuthorizer(AuthorizerConfig{
		Keys:         SecretRef{Value: "old-key-123,new-key-456"},
		UsagePlanKey: "usage-plan-key-0123456789",
		CacheTTL:     time.Minute,
	}, NewSecretReader(emptyAWSConfig()), slog.New(slog.DiscardHandler))

	tests := []struct {
		name    string
		headers map[string]string
		allow   bool
		keyID   string
	}{
		{"bearer first key", map[string]string{"Authorization": "Bearer old-key-123"}, true, KeyID("old-key-123")},
		{"bearer second key", map[string]string{"Authorization": "Bearer new-key-456"}, true, KeyID("new-key-456")},
		{"scheme any case", map[string]string{"authorization": "bEaReR new-key-456"}, true, KeyID("new-key-456")},
		{"basic password", map[string]string{"Authorization": basic("mparticle", "new-key-456")}, true, KeyID("new-key-456")},
		{"basic empty user", map[string]string{"Authorization": basic("", "old-key-123")}, true, KeyID("old-key-123")},
		{"wrong key", map[string]string{"Authorization": "Bearer other-key"}, false, ""},
		{"key as user name", map[string]string{"Authorization": basic("new-key-456", "x")}, false, ""},
		{"bare key", map[string]string{"Authorization": "new-key-456"}, false, ""},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, false, ""},
		{"basic not base64", map[string]string{"Authorization": "Basic %%%"}, false, ""},
		{"x-api-key ignored", map[string]string{"X-API-Key": "new-key-456"}, false, ""},
		{"no headers", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := a.Handle(t.Context(), authRequest(tt.headers))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			st := resp.PolicyDocument.Statement
			if len(st) != 1 {
				t.Fatalf("policy has %d statements, want 1", len(st))
			}
			want := "Deny"
			if tt.allow {
				want = "Allow"
			}
			if st[0].Effect != want {
				t.Errorf("Effect = %s, want %s", st[0].Effect, want)
			}
			if len(st[0].Resource) != 1 || st[0].Resource[0] != testMethodArn {
				t.Errorf("Resource = %v, want [%s]", st[0].Resource, testMethodArn)
			}
			if len(st[0].Action) != 1 || st[0].Action[0] != "execute-api:Invoke" {
				t.Errorf("Action = %v, want [execute-api:Invoke]", st[0].Action)
			}
			if !tt.allow {
				if resp.UsageIdentifierKey != "" {
					t.Errorf("denied request has usageIdentifierKey %q", resp.UsageIdentifierKey)
				}
				return
			}
			if resp.UsageIdentifierKey != "usage-plan-key-0123456789" {
				t.Errorf("usageIdentifierKey = %q, want the usage plan key", resp.UsageIdentifierKey)
			}
			if resp.Context["keyId"] != tt.keyID {
				t.Errorf("context keyId = %v, want %s", resp.Context["keyId"], tt.keyID)
			}
			if resp.PrincipalID != "webhook-key-"+tt.keyID {
				t.Errorf("principalId = %q, want webhook-key-%s (the key id, never the key)", resp.PrincipalID, tt.keyID)
			}
		})
	}
}

func TestAuthorizerMultiValueHeader(t *testing.T) {
	a := NewAuthorizer(AuthorizerConfig{Keys: SecretRef{Value: "k1"}},
		NewSecretReader(emptyAWSConfig()), slog.New(slog.DiscardHandler))
	req := authRequest(nil)
	req.MultiValueHeaders = map[string][]string{"AUTHORIZATION": {"Bearer k1"}}
	resp, err := a.Handle(t.Context(), req)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got := resp.PolicyDocument.Statement[0].Effect; got != "Allow" {
		t.Errorf("Effect = %s, want Allow", got)
	}
}

// TestAuthorizerRotation follows a key rotation: the secret first has the
// old key, then both, then only the new one. Each change is seen once the
// cache TTL has passed, and not before.
func TestAuthorizerRotation(t *testing.T) {
	fake, reader := newFakeAWS(t)
	fake.secrets["layover/webhook-keys"] = "old-key"
	a := NewAuthorizer(AuthorizerConfig{Keys: SecretRef{SecretID: "layover/webhook-keys"}, CacheTTL: 5 * time.Minute},
		reader, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }

	effect := func(key string) string {
		t.Helper()
		resp, err := a.Handle(t.Context(), authRequest(map[string]string{"Authorization": "Bearer " + key}))
		if err != nil {
			t.Fatalf("Handle(%s): %v", key, err)
		}
		return resp.PolicyDocument.Statement[0].Effect
	}

	if got := effect("old-key"); got != "Allow" {
		t.Errorf("old key before rotation: %s, want Allow", got)
	}
	fake.mu.Lock()
	fake.secrets["layover/webhook-keys"] = "old-key\nnew-key"
	fake.mu.Unlock()
	if got := effect("new-key"); got != "Deny" {
		t.Errorf("new key within the cache TTL: %s, want Deny (cached list)", got)
	}
	now = now.Add(5 * time.Minute)
	if got := effect("new-key"); got != "Allow" {
		t.Errorf("new key after the cache TTL: %s, want Allow", got)
	}
	fake.mu.Lock()
	fake.secrets["layover/webhook-keys"] = "new-key"
	fake.mu.Unlock()
	now = now.Add(5 * time.Minute)
	if got := effect("old-key"); got != "Deny" {
		t.Errorf("old key after its removal: %s, want Deny", got)
	}
	if got := effect("new-key"); got != "Allow" {
		t.Errorf("new key after the old one's removal: %s, want Allow", got)
	}
	if n := len(fake.recorded()); n != 3 {
		t.Errorf("GetSecretValue requests = %d, want 3 (one per cache period)", n)
	}
}

func TestAuthorizerSecretFailureIsError(t *testing.T) {
	_, reader := newFakeAWS(t)
	a := NewAuthorizer(AuthorizerConfig{Keys: SecretRef{SecretID: "layover/missing"}, CacheTTL: time.Minute},
		reader, slog.New(slog.DiscardHandler))
	_, err := a.Handle(t.Context(), authRequest(map[string]string{"Authorization": "Bearer k"}))
	if err == nil {
		t.Fatal("Handle succeeded without a key list; want an error so that API Gateway answers 500")
	}
}

func TestAuthorizerEmptyKeyListIsError(t *testing.T) {
	fake, reader := newFakeAWS(t)
	fake.secrets["layover/blank"] = " , \n,"
	a := NewAuthorizer(AuthorizerConfig{Keys: SecretRef{SecretID: "layover/blank"}},
		reader, slog.New(slog.DiscardHandler))
	_, err := a.Handle(t.Context(), authRequest(map[string]string{"Authorization": "Bearer k"}))
	if err == nil {
		t.Fatal("Handle succeeded with an empty key list")
	}
}

func TestParseKeys(t *testing.T) {
	got, err := ParseKeys(" a1 ,b2\r\nc3\n\n,")
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	if strings.Join(got, "|") != "a1|b2|c3" {
		t.Errorf("ParseKeys = %q, want [a1 b2 c3]", got)
	}
	if _, err := ParseKeys("good,bad key"); err == nil {
		t.Error("ParseKeys accepted a key with a space")
	}
	if _, err := ParseKeys(" ,\n"); err == nil {
		t.Error("ParseKeys accepted a list with no key")
	}
}

func TestKeyIDIsStable(t *testing.T) {
	// The first 12 digits of: printf %s change-me | sha256sum
	const want = "e2186dbdb1bb"
	if got := KeyID("change-me"); got != want {
		t.Errorf("KeyID(change-me) = %s, want %s", got, want)
	}
}
