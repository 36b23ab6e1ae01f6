package serverless

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
)

// fakeAWS replaces the Secrets Manager and SSM endpoints. It serves
// GetSecretValue and GetParameter in the AWS JSON protocol and records the
// requests.
type fakeAWS struct {
	mu       sync.Mutex
	secrets  map[string]string // SecretId to SecretString
	params   map[string]string // Name to Value
	requests []fakeRequest
}

type fakeRequest struct {
	target string
	body   map[string]any
	signed bool
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	target := r.Header.Get("X-Amz-Target")
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{
		target: target, body: body,
		signed: strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256"),
	})
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case "secretsmanager.GetSecretValue":
		id, _ := body["SecretId"].(string)
		if value, ok := f.secrets[id]; ok {
			writeJSON(w, http.StatusOK, map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + id,
				"Name": id, "SecretString": value})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"__type": "ResourceNotFoundException",
			"Message": "Secrets Manager can't find the specified secret."})
	case "AmazonSSM.GetParameter":
		name, _ := body["Name"].(string)
		if value, ok := f.params[name]; ok {
			writeJSON(w, http.StatusOK, map[string]any{"Parameter": map[string]any{
				"Name": name, "Type": "SecureString", "Value": value, "Version": 1}})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"__type": "ParameterNotFound", "message": ""})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{"__type": "UnknownOperationException"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAWS) recorded() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// newFakeAWS starts fakeAWS and points the SDK's Secrets Manager and SSM
// endpoints at it, and returns a SecretReader that uses it.
func newFakeAWS(t *testing.T) (*fakeAWS, *SecretReader) {
	t.Helper()
	fake := &fakeAWS{secrets: map[string]string{}, params: map[string]string{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	// The variable names follow the SDK's service ids ("Secrets Manager",
	// "SSM"). AWS_ENDPOINT_URL keeps any other service off the network.
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL)
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return fake, NewSecretReader(cfg)
}

func TestReadSecretsManager(t *testing.T) {
	fake, reader := newFakeAWS(t)
	fake.secrets["layover/iterable"] = "  iterable-key-1\n"

	got, err := reader.Read(t.Context(), SecretRef{SecretID: "layover/iterable"})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got != "iterable-key-1" {
		t.Errorf("Read = %q, want %q (trimmed)", got, "iterable-key-1")
	}
	reqs := fake.recorded()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	if reqs[0].target != "secretsmanager.GetSecretValue" {
		t.Errorf("X-Amz-Target = %q, want secretsmanager.GetSecretValue", reqs[0].target)
	}
	if reqs[0].body["SecretId"] != "layover/iterable" {
		t.Errorf("SecretId = %v, want layover/iterable", reqs[0].body["SecretId"])
	}
	if !reqs[0].signed {
		t.Error("request is not signed with SigV4")
	}
}

func TestReadSSMParameterDecrypts(t *testing.T) {
	fake, reader := newFakeAWS(t)
	fake.params["/layover/iterable"] = "iterable-key-2"

	got, err := reader.Read(t.Context(), SecretRef{Parameter: "/layover/iterable"})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got != "iterable-key-2" {
		t.Errorf("Read = %q, want iterable-key-2", got)
	}
	reqs := fake.recorded()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	if reqs[0].target != "AmazonSSM.GetParameter" {
		t.Errorf("X-Amz-Target = %q, want AmazonSSM.GetParameter", reqs[0].target)
	}
	if reqs[0].body["WithDecryption"] != true {
		t.Errorf("WithDecryption = %v, want true", reqs[0].body["WithDecryption"])
	}
}

func TestReadMissingSecretNamesIt(t *testing.T) {
	_, reader := newFakeAWS(t)
	_, err := reader.Read(t.Context(), SecretRef{SecretID: "layover/missing"})
	if err == nil {
		t.Fatal("Read of a missing secret succeeded")
	}
	if !strings.Contains(err.Error(), "secret layover/missing") {
		t.Errorf("error %q does not name the secret", err)
	}
	if !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("error %q does not carry the AWS error code", err)
	}
}

func TestReadEmptyValue(t *testing.T) {
	fake, reader := newFakeAWS(t)
	fake.params["/layover/empty"] = " \n"
	_, err := reader.Read(t.Context(), SecretRef{Parameter: "/layover/empty"})
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Read of a blank parameter: error = %v, want one saying it is empty", err)
	}
}

func TestReadValueNeedsNoAWS(t *testing.T) {
	fake, reader := newFakeAWS(t)
	got, err := reader.Read(t.Context(), SecretRef{Value: "local-key"})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got != "local-key" {
		t.Errorf("Read = %q, want local-key", got)
	}
	if n := len(fake.recorded()); n != 0 {
		t.Errorf("Read of a direct value sent %d AWS requests, want 0", n)
	}
	if _, err := reader.Read(t.Context(), SecretRef{}); err == nil || errors.Is(err, nil) {
		t.Error("Read with no source succeeded")
	}
}
