package serverless

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SecretRef names where a secret value is kept. Exactly one field is set.
type SecretRef struct {
	// Value is the secret itself, for local runs.
	Value string
	// SecretID is the name or ARN of a Secrets Manager secret whose
	// SecretString is the value.
	SecretID string
	// Parameter is the name or ARN of an SSM parameter whose value, decrypted
	// when it is a SecureString, is the value.
	Parameter string
}

// String names the source without the value, for logs and errors.
func (r SecretRef) String() string {
	switch {
	case r.SecretID != "":
		return "secret " + r.SecretID
	case r.Parameter != "":
		return "parameter " + r.Parameter
	case r.Value != "":
		return "value from the environment"
	}
	return "no source"
}

// SecretReader reads secret values from Secrets Manager and SSM Parameter
// Store. Its AWS clients are created on first use, so a reader used only
// for SecretRef.Value needs no AWS configuration. It is safe for concurrent
// use.
//
// The SDK sends requests to AWS_ENDPOINT_URL_SECRETS_MANAGER and
// AWS_ENDPOINT_URL_SSM when they are set, as tests do.
type SecretReader struct {
	cfg aws.Config

	once    sync.Once
	secrets *secretsmanager.Client
	params  *ssm.Client
}

// NewSecretReader returns a reader that uses cfg for its AWS clients.
func NewSecretReader(cfg aws.Config) *SecretReader {
	return &SecretReader{cfg: cfg}
}

// Read returns the value that ref names, with surrounding white space
// removed. It returns an error when the value is empty, when the secret has
// only a SecretBinary, or when the AWS request fails.
func (r *SecretReader) Read(ctx context.Context, ref SecretRef) (string, error) {
	var value string
	var err error
	switch {
	case ref.Value != "":
		value = ref.Value
	case ref.SecretID != "":
		value, err = r.readSecret(ctx, ref.SecretID)
	case ref.Parameter != "":
		value, err = r.readParameter(ctx, ref.Parameter)
	default:
		return "", errors.New("read secret: no source is set")
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ref, err)
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return "", fmt.Errorf("read %s: the value is empty", ref)
	}
	return value, nil
}

func (r *SecretReader) clients() {
	r.once.Do(func() {
		r.secrets = secretsmanager.NewFromConfig(r.cfg)
		r.params = ssm.NewFromConfig(r.cfg)
	})
}

func (r *SecretReader) readSecret(ctx context.Context, id string) (string, error) {
	r.clients()
	out, err := r.secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(id),
	})
	if err != nil {
		return "", err
	}
	if out.SecretString == nil {
		return "", errors.New("the secret has no SecretString: store the value as text")
	}
	return *out.SecretString, nil
}

func (r *SecretReader) readParameter(ctx context.Context, name string) (string, error) {
	r.clients()
	out, err := r.params.GetParameter(ctx, &ssm.GetParameterInput{
		Name:           aws.String(name),
		WithDecryption: aws.Bool(true),
	})
	if err != nil {
		return "", err
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", errors.New("the response has no parameter value")
	}
	return *out.Parameter.Value, nil
}
