package serverless

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/layover-dev/layover/forward"
	"github.com/layover-dev/layover/iterable"
)

// emptyAWSConfig is enough for a SecretReader that reads only direct values.
func emptyAWSConfig() aws.Config { return aws.Config{} }

// envOf returns a LookupEnv over a map.
func envOf(vars map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

const testQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/layover"

func TestForwardConfigDefaults(t *testing.T) {
	c, err := ForwardConfigFromEnv(envOf(map[string]string{
		EnvQueue:             testQueueURL,
		EnvIterableKeySecret: "layover/iterable-api-key",
	}))
	if err != nil {
		t.Fatalf("ForwardConfigFromEnv: %v", err)
	}
	want := ForwardConfig{
		QueueURL:    testQueueURL,
		IterableKey: SecretRef{SecretID: "layover/iterable-api-key"},
		IterableURL: iterable.USBaseURL,
		BatchEvents: forward.DefaultMaxEvents,
		Rate:        DefaultRate,
		Visibility:  forward.DefaultVisibility,
		RetryBudget: forward.DefaultRetryBudget,
	}
	if c != want {
		t.Errorf("config = %+v\nwant %+v", c, want)
	}
}

func TestForwardConfigSettings(t *testing.T) {
	c, err := ForwardConfigFromEnv(envOf(map[string]string{
		EnvQueue:                testQueueURL,
		EnvIterableKeyParameter: "/layover/iterable",
		EnvIterableURL:          iterable.EUBaseURL,
		EnvMapping:              "/var/task/mapping.json",
		EnvBatchEvents:          "500",
		EnvRate:                 "4.5",
		EnvVisibility:           "90m",
		EnvRetryBudget:          "3m",
	}))
	if err != nil {
		t.Fatalf("ForwardConfigFromEnv: %v", err)
	}
	if c.IterableKey != (SecretRef{Parameter: "/layover/iterable"}) {
		t.Errorf("IterableKey = %+v, want the parameter", c.IterableKey)
	}
	if c.IterableURL != iterable.EUBaseURL || c.MappingFile != "/var/task/mapping.json" {
		t.Errorf("IterableURL, MappingFile = %q, %q", c.IterableURL, c.MappingFile)
	}
	if c.BatchEvents != 500 || c.Rate != 4.5 {
		t.Errorf("BatchEvents, Rate = %d, %g; want 500, 4.5", c.BatchEvents, c.Rate)
	}
	if c.Visibility != 90*time.Minute || c.RetryBudget != 3*time.Minute {
		t.Errorf("Visibility, RetryBudget = %s, %s; want 1h30m0s, 3m0s", c.Visibility, c.RetryBudget)
	}
}

func TestForwardConfigErrorsNameVariable(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{EnvQueue: testQueueURL, EnvIterableKey: "k"}
	}
	tests := []struct {
		name  string
		set   map[string]string
		unset []string
		want  string
	}{
		{"missing queue", nil, []string{EnvQueue}, EnvQueue},
		{"queue not a URL", map[string]string{EnvQueue: "layover"}, nil, EnvQueue},
		{"no key source", nil, []string{EnvIterableKey}, EnvIterableKeySecret},
		{"two key sources", map[string]string{EnvIterableKeySecret: "s"}, nil, "2 are set"},
		{"bad base URL", map[string]string{EnvIterableURL: "api.iterable.com"}, nil, EnvIterableURL},
		{"base URL with the API path", map[string]string{EnvIterableURL: "https://api.iterable.com/api/events/trackBulk"}, nil, EnvIterableURL},
		{"batch too large", map[string]string{EnvBatchEvents: "1001"}, nil, EnvBatchEvents},
		{"batch not a number", map[string]string{EnvBatchEvents: "many"}, nil, EnvBatchEvents},
		{"rate above Iterable's limit", map[string]string{EnvRate: "11"}, nil, EnvRate},
		{"rate not a number", map[string]string{EnvRate: "NaN"}, nil, EnvRate},
		{"rate too low to finish a run", map[string]string{EnvRate: "0.001"}, nil, EnvRate},
		{"visibility too long", map[string]string{EnvVisibility: "13h"}, nil, EnvVisibility},
		{"visibility not a duration", map[string]string{EnvVisibility: "90"}, nil, EnvVisibility},
		{"retry budget past visibility", map[string]string{EnvVisibility: "2m", EnvRetryBudget: "2m"}, nil, EnvRetryBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := base()
			for k, v := range tt.set {
				vars[k] = v
			}
			for _, k := range tt.unset {
				delete(vars, k)
			}
			_, err := ForwardConfigFromEnv(envOf(vars))
			if err == nil {
				t.Fatal("ForwardConfigFromEnv succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestAuthorizerConfig(t *testing.T) {
	c, err := AuthorizerConfigFromEnv(envOf(map[string]string{
		EnvAPIKeysSecret: "layover/webhook-keys",
		EnvUsagePlanKey:  "usage-plan-key-0123456789",
	}))
	if err != nil {
		t.Fatalf("AuthorizerConfigFromEnv: %v", err)
	}
	if c.Keys != (SecretRef{SecretID: "layover/webhook-keys"}) || c.CacheTTL != DefaultKeysCacheTTL {
		t.Errorf("config = %+v", c)
	}
	if c.UsagePlanKey != "usage-plan-key-0123456789" {
		t.Errorf("UsagePlanKey = %q", c.UsagePlanKey)
	}

	for name, vars := range map[string]map[string]string{
		"no key source":  {},
		"blank key list": {EnvAPIKeys: " , "},
		"TTL too long":   {EnvAPIKeys: "k", EnvKeysCacheTTL: "2h"},
		"negative TTL":   {EnvAPIKeys: "k", EnvKeysCacheTTL: "-1s"},
	} {
		if _, err := AuthorizerConfigFromEnv(envOf(vars)); err == nil {
			t.Errorf("%s: AuthorizerConfigFromEnv succeeded", name)
		}
	}
}

func TestNewHandlerRejectsUnknownName(t *testing.T) {
	for _, name := range []string{"", "ingest"} {
		_, err := NewHandler(t.Context(), envOf(map[string]string{EnvHandler: name}),
			slog.New(slog.DiscardHandler), "test")
		if err == nil || !strings.Contains(err.Error(), EnvHandler) {
			t.Errorf("NewHandler(%q): error = %v, want one naming %s", name, err, EnvHandler)
		}
	}
}

func TestNewHandlerForwardValidates(t *testing.T) {
	_, err := NewHandler(t.Context(), envOf(map[string]string{EnvHandler: HandlerForward}),
		slog.New(slog.DiscardHandler), "test")
	if err == nil || !strings.Contains(err.Error(), EnvQueue) {
		t.Errorf("NewHandler(forward) without a queue: error = %v, want one naming %s", err, EnvQueue)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(envOf(nil), &buf)
	if err != nil {
		t.Fatalf("NewLogger: %v", err)
	}
	log.Debug("hidden")
	log.Info("shown", "key_id", "abc")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.HasPrefix(out, "{") {
		t.Errorf("default logger output %q: want JSON at info level", out)
	}
	if _, err := NewLogger(envOf(map[string]string{EnvLogLevel: "loud"}), &buf); err == nil {
		t.Error("NewLogger accepted level loud")
	}
	if _, err := NewLogger(envOf(map[string]string{EnvLogFormat: "xml"}), &buf); err == nil {
		t.Error("NewLogger accepted format xml")
	}
}
