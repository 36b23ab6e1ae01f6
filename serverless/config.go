// Package serverless runs Layover on AWS Lambda. It has two handlers: the
// scheduled forwarder, which drains the SQS queue into Iterable with the
// same forward code as `layover forward`, and the API Gateway request
// authorizer, which checks the webhook key in the Authorization header.
// cmd/layover-lambda starts one of them, and deploy/aws deploys both.
package serverless

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
)

// Environment variables that the Lambda functions read. deploy/aws sets
// them, and local runs may set them by hand.
const (
	// EnvHandler selects the handler: HandlerForward or HandlerAuthorize.
	EnvHandler = "LAYOVER_LAMBDA_HANDLER"

	// EnvQueue is the URL of the SQS queue that the forwarder drains.
	EnvQueue = "LAYOVER_QUEUE"
	// EnvIterableKey is the Iterable API key itself, for local runs.
	EnvIterableKey = "ITERABLE_API_KEY"
	// EnvIterableKeySecret is the name or ARN of a Secrets Manager secret
	// whose SecretString is the Iterable API key.
	EnvIterableKeySecret = "ITERABLE_API_KEY_SECRET"
	// EnvIterableKeyParameter is the name of an SSM parameter, usually a
	// SecureString, whose value is the Iterable API key.
	EnvIterableKeyParameter = "ITERABLE_API_KEY_PARAMETER"
	// EnvIterableURL is the Iterable API host. Default iterable.USBaseURL.
	EnvIterableURL = "ITERABLE_BASE_URL"
	// EnvMapping is a JSON file that overrides the default event mapping.
	EnvMapping = "LAYOVER_MAPPING"
	// EnvBatchEvents is the maximum number of events in one trackBulk
	// request.
	EnvBatchEvents = "LAYOVER_BATCH_EVENTS"
	// EnvRate is the number of trackBulk requests per second.
	EnvRate = "LAYOVER_RATE"
	// EnvVisibility is how long a received message stays hidden from other
	// runs.
	EnvVisibility = "LAYOVER_VISIBILITY_TIMEOUT"
	// EnvRetryBudget is how long one run may wait in total while Iterable
	// returns 429 or 5xx.
	EnvRetryBudget = "LAYOVER_RETRY_BUDGET"

	// EnvAPIKeys is the comma-separated list of webhook keys, for local runs.
	EnvAPIKeys = "LAYOVER_API_KEYS"
	// EnvAPIKeysSecret is the name or ARN of a Secrets Manager secret that
	// contains the webhook keys, separated by commas or newlines.
	EnvAPIKeysSecret = "LAYOVER_API_KEYS_SECRET"
	// EnvAPIKeysParameter is the name of an SSM parameter that contains the
	// webhook keys, separated by commas or newlines.
	EnvAPIKeysParameter = "LAYOVER_API_KEYS_PARAMETER"
	// EnvKeysCacheTTL is how long the authorizer reuses the key list it read.
	EnvKeysCacheTTL = "LAYOVER_API_KEYS_CACHE_TTL"
	// EnvUsagePlanKey is the value of the API Gateway API key that the
	// authorizer returns as usageIdentifierKey, so that the usage plan of
	// that key throttles the webhook.
	EnvUsagePlanKey = "LAYOVER_USAGE_PLAN_KEY"

	// EnvLogLevel is debug, info, warn or error. Default info.
	EnvLogLevel = "LAYOVER_LOG_LEVEL"
	// EnvLogFormat is json or text. Default json, which CloudWatch Logs
	// Insights can query by field.
	EnvLogFormat = "LAYOVER_LOG_FORMAT"
)

// Values of EnvHandler.
const (
	HandlerForward   = "forward"
	HandlerAuthorize = "authorize"
)

// Defaults of the settings that the command-line forwarder does not share.
const (
	// DefaultRate paces trackBulk requests below Iterable's limit of 10
	// requests per second per project, like `layover forward`.
	DefaultRate = 8.0
	// DefaultKeysCacheTTL is how long the authorizer reuses the key list.
	// API Gateway caches each authorizer result on top of this.
	DefaultKeysCacheTTL = 5 * time.Minute
	// maxKeysCacheTTL matches the longest result cache of API Gateway.
	maxKeysCacheTTL = time.Hour
)

// LookupEnv returns the value of an environment variable and whether it is
// set. os.LookupEnv has this type.
type LookupEnv func(name string) (string, bool)

// ForwardConfig configures the forwarder function.
type ForwardConfig struct {
	QueueURL    string
	IterableKey SecretRef
	IterableURL string
	MappingFile string // "" for the default mapping
	BatchEvents int
	Rate        float64
	Visibility  time.Duration
	RetryBudget time.Duration
}

// ForwardConfigFromEnv reads and validates the forwarder's settings. It
// applies the same limits as `layover forward`, and its error names every
// variable at fault with the values it accepts.
func ForwardConfigFromEnv(env LookupEnv) (ForwardConfig, error) {
	r := envReader{env: env}
	c := ForwardConfig{
		QueueURL:    r.str(EnvQueue, ""),
		IterableURL: r.str(EnvIterableURL, iterable.USBaseURL),
		MappingFile: r.str(EnvMapping, ""),
		BatchEvents: r.integer(EnvBatchEvents, forward.DefaultMaxEvents),
		Rate:        r.float(EnvRate, DefaultRate),
		Visibility:  r.duration(EnvVisibility, forward.DefaultVisibility),
		RetryBudget: r.duration(EnvRetryBudget, forward.DefaultRetryBudget),
	}
	c.IterableKey = r.secret("Iterable API key", EnvIterableKey, EnvIterableKeySecret, EnvIterableKeyParameter)
	if err := errors.Join(r.err(), c.validate()); err != nil {
		return ForwardConfig{}, err
	}
	return c, nil
}

func (c ForwardConfig) validate() error {
	var errs []error
	if u, err := url.Parse(c.QueueURL); c.QueueURL == "" || err != nil ||
		(u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("invalid %s %q: expected an SQS queue URL such as "+
			"https://sqs.us-east-1.amazonaws.com/123456789012/layover", EnvQueue, c.QueueURL))
	}
	if err := iterable.CheckBaseURL(c.IterableURL); err != nil {
		errs = append(errs, err) // names EnvIterableURL
	}
	if c.BatchEvents < 1 || c.BatchEvents > 1000 {
		errs = append(errs, fmt.Errorf("invalid %s %d: expected 1 to 1000", EnvBatchEvents, c.BatchEvents))
	}
	if !(c.Rate >= 0.01 && c.Rate <= 10) { // written so that NaN fails too
		errs = append(errs, fmt.Errorf("invalid %s %g: expected 0.01 to 10 requests "+
			"per second, Iterable's limit per project", EnvRate, c.Rate))
	}
	if c.Visibility < time.Second || c.Visibility > 12*time.Hour {
		errs = append(errs, fmt.Errorf("invalid %s %s: expected 1s to 12h", EnvVisibility, c.Visibility))
	}
	if c.RetryBudget <= 0 || c.RetryBudget >= c.Visibility {
		errs = append(errs, fmt.Errorf("invalid %s %s: expected more than 0 and less than %s %s",
			EnvRetryBudget, c.RetryBudget, EnvVisibility, c.Visibility))
	}
	return errors.Join(errs...)
}

// AuthorizerConfig configures the authorizer function.
type AuthorizerConfig struct {
	Keys SecretRef
	// UsagePlanKey is returned as usageIdentifierKey of every allowed
	// request. "" returns none, which suits an API without a usage plan.
	UsagePlanKey string
	// CacheTTL is how long a key list read from Secrets Manager or SSM is
	// reused. Zero reads it for every request that reaches the function.
	CacheTTL time.Duration
}

// AuthorizerConfigFromEnv reads and validates the authorizer's settings.
func AuthorizerConfigFromEnv(env LookupEnv) (AuthorizerConfig, error) {
	r := envReader{env: env}
	c := AuthorizerConfig{
		Keys:         r.secret("webhook keys", EnvAPIKeys, EnvAPIKeysSecret, EnvAPIKeysParameter),
		UsagePlanKey: r.str(EnvUsagePlanKey, ""),
		CacheTTL:     r.duration(EnvKeysCacheTTL, DefaultKeysCacheTTL),
	}
	errs := r.errs
	if c.CacheTTL < 0 || c.CacheTTL > maxKeysCacheTTL {
		errs = append(errs, fmt.Errorf("invalid %s %s: expected 0s to %s",
			EnvKeysCacheTTL, c.CacheTTL, maxKeysCacheTTL))
	}
	if c.Keys.Value != "" {
		if _, err := ParseKeys(c.Keys.Value); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s: %w", EnvAPIKeys, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return AuthorizerConfig{}, err
	}
	return c, nil
}

// envReader reads typed settings and collects one error per invalid value.
// An invalid value reads as the default, so that validation after reading
// does not report the same variable again.
type envReader struct {
	env  LookupEnv
	errs []error
}

func (r *envReader) err() error { return errors.Join(r.errs...) }

func (r *envReader) str(name, def string) string {
	if v, ok := r.env(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (r *envReader) integer(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("invalid %s=%q: expected a whole number", name, v))
		return def
	}
	return n
}

func (r *envReader) float(name string, def float64) float64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("invalid %s=%q: expected a number", name, v))
		return def
	}
	return f
}

func (r *envReader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("invalid %s=%q: expected a duration such as 90s, 15m or 2h", name, v))
		return def
	}
	return d
}

// secret reads a SecretRef from three variables, of which exactly one must
// be set.
func (r *envReader) secret(setting, valueVar, secretVar, parameterVar string) SecretRef {
	ref := SecretRef{
		Value:     r.str(valueVar, ""),
		SecretID:  r.str(secretVar, ""),
		Parameter: r.str(parameterVar, ""),
	}
	set := 0
	for _, v := range []string{ref.Value, ref.SecretID, ref.Parameter} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		r.errs = append(r.errs, fmt.Errorf("%s: set exactly one of %s (a Secrets Manager secret), "+
			"%s (an SSM parameter) or %s (the value itself, for local runs); %d are set",
			setting, secretVar, parameterVar, valueVar, set))
	}
	return ref
}
