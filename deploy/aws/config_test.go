package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func lookupOf(values map[string]any) func(string) any {
	return func(key string) any { return values[key] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromContext(lookupOf(nil))
	if err != nil {
		t.Fatalf("ConfigFromContext: %v", err)
	}
	want := Config{
		StackName:          DefaultStackName,
		MaxReceiveCount:    DefaultMaxReceiveCount,
		ForwardEvery:       DefaultForwardEvery,
		ForwarderTimeout:   DefaultForwarderTimeout,
		ForwarderMemoryMB:  DefaultForwarderMemoryMB,
		IterableBaseURL:    DefaultIterableBaseURL,
		AuthorizerCacheTTL: DefaultAuthorizerCacheTTL,
		ThrottleRate:       DefaultThrottleRate,
		ThrottleBurst:      DefaultThrottleBurst,
		MaxMessageAge:      DefaultMaxMessageAge,
	}
	if c != want {
		t.Errorf("config = %+v\nwant %+v", c, want)
	}
	if c.Visibility() != 90*time.Minute {
		t.Errorf("Visibility() = %s, want 1h30m", c.Visibility())
	}
}

func TestConfigReadsStringsAndNumbers(t *testing.T) {
	// -c name=value gives strings, and cdk.json gives JSON numbers.
	c, err := ConfigFromContext(lookupOf(map[string]any{
		"maxReceiveCount": "8",
		"throttleBurst":   float64(20),
		"throttleRate":    "12.5",
		"forwardEvery":    "30m",
	}))
	if err != nil {
		t.Fatalf("ConfigFromContext: %v", err)
	}
	if c.MaxReceiveCount != 8 || c.ThrottleBurst != 20 || c.ThrottleRate != 12.5 || c.ForwardEvery != 30*time.Minute {
		t.Errorf("config = %+v", c)
	}
}

func TestConfigErrorsNameKey(t *testing.T) {
	tests := map[string]map[string]any{
		"stackName":            {"stackName": "1layover"},
		"maxReceiveCount":      {"maxReceiveCount": "0"},
		"forwardEvery":         {"forwardEvery": "90s"},
		"forwarderTimeout":     {"forwarderTimeout": "16m"},
		"forwarderMemoryMB":    {"forwarderMemoryMB": "64"},
		"iterableBaseUrl":      {"iterableBaseUrl": "http://api.iterable.com"},
		"iterableKeyParameter": {"iterableKeySecret": "a", "iterableKeyParameter": "/b"},
		"webhookKeysParameter": {"webhookKeysSecret": "a", "webhookKeysParameter": "/b"},
		"authorizerCacheTtl":   {"authorizerCacheTtl": "2h"},
		"throttleRate":         {"throttleRate": "fast"},
		"throttleBurst":        {"throttleBurst": "0"},
		"maxMessageAge":        {"maxMessageAge": "30m"},
		"alarmTopicArn":        {"alarmTopicArn": "layover-alarms"},
	}
	for key, values := range tests {
		t.Run(key, func(t *testing.T) {
			_, err := ConfigFromContext(lookupOf(values))
			if err == nil {
				t.Fatalf("ConfigFromContext(%v) succeeded", values)
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not name %s", err, key)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour:                    "1h",
		90 * time.Minute:             "1h30m",
		15 * time.Minute:             "15m",
		90 * time.Second:             "1m30s",
		0:                            "0s",
		6*time.Hour + 30*time.Second: "6h0m30s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if parsed, err := time.ParseDuration(formatDuration(d)); err != nil || parsed != d {
			t.Errorf("formatDuration(%v) = %q does not parse back: %v, %v", d, formatDuration(d), parsed, err)
		}
	}
}

// TestEnvNamesMatchHandler reads the package that the functions run and
// checks that it still declares every environment variable and handler
// name that the stack sets. The two live in different modules, so the
// stack cannot import the names.
func TestEnvNamesMatchHandler(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "serverless", "config.go"))
	if err != nil {
		t.Fatalf("read the handler's configuration: %v", err)
	}
	for _, name := range []string{
		envHandler, envQueue, envIterableKeySecret, envIterableKeyParameter, envIterableURL, envMapping,
		envVisibility, envAPIKeysSecret, envAPIKeysParameter, envKeysCacheTTL, envUsagePlanKey,
		"forward", "authorize",
	} {
		if !strings.Contains(string(src), `"`+name+`"`) {
			t.Errorf("serverless/config.go does not declare %q, which the stack sets", name)
		}
	}
}

func TestCopyMappingChecksJSON(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"events":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"events":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := copyMapping(good, filepath.Join(dir, mappingName)); err != nil {
		t.Errorf("copyMapping of a JSON file: %v", err)
	}
	if err := copyMapping(bad, filepath.Join(dir, "out.json")); err == nil || !strings.Contains(err.Error(), "mappingFile") {
		t.Errorf("copyMapping of invalid JSON: error = %v, want one naming mappingFile", err)
	}
	if err := copyMapping(filepath.Join(dir, "missing.json"), filepath.Join(dir, "out.json")); err == nil {
		t.Error("copyMapping of a missing file succeeded")
	}
}
