package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the deployment's settings, read from CDK context values (`cdk
// deploy -c name=value`, or the context of cdk.json). The zero value of a
// field means its default. docs/deploy-aws.md lists every setting.
type Config struct {
	// StackName names the CloudFormation stack. Default "Layover".
	StackName string
	// MaxReceiveCount is how many receives a message may have before SQS
	// moves it to the dead-letter queue. Default 5.
	MaxReceiveCount int
	// ForwardEvery is the period of the forwarder's schedule, in whole
	// minutes. Default 1 hour.
	ForwardEvery time.Duration
	// ForwarderTimeout is the forwarder function's timeout, in whole
	// seconds, at most Lambda's 15 minutes. Default 15 minutes. The queue's
	// visibility timeout is six times as long.
	ForwarderTimeout time.Duration
	// ForwarderMemoryMB is the forwarder function's memory. Default 256.
	ForwarderMemoryMB int
	// IterableBaseURL is the Iterable API host. Default the US host.
	IterableBaseURL string
	// IterableKeySecret and IterableKeyParameter name an existing Secrets
	// Manager secret or SSM parameter with the Iterable API key. With
	// neither, the stack creates a secret for the operator to fill in.
	IterableKeySecret    string
	IterableKeyParameter string
	// WebhookKeysSecret and WebhookKeysParameter name an existing secret
	// or SSM parameter with the webhook keys. With neither, the stack
	// creates a secret with one generated key.
	WebhookKeysSecret    string
	WebhookKeysParameter string
	// AuthorizerCacheTTL is how long API Gateway caches an authorizer
	// result for one Authorization value, and how long the authorizer
	// reuses the key list. Default 5 minutes, at most 1 hour.
	AuthorizerCacheTTL time.Duration
	// ThrottleRate and ThrottleBurst are the usage plan's steady rate in
	// requests per second and its burst. Defaults 50 and 100.
	ThrottleRate  float64
	ThrottleBurst int
	// MaxMessageAge is the age of the oldest message in the queue above
	// which an alarm fires. Default 3 hours.
	MaxMessageAge time.Duration
	// AlarmTopicArn, when set, is the SNS topic that every alarm notifies.
	AlarmTopicArn string
	// MappingFile, when set, is a mapping JSON file that the forwarder
	// uses instead of the default mapping. It is copied into the function.
	MappingFile string
}

// Defaults of Config.
const (
	DefaultStackName          = "Layover"
	DefaultMaxReceiveCount    = 5
	DefaultForwardEvery       = time.Hour
	DefaultForwarderTimeout   = 15 * time.Minute
	DefaultForwarderMemoryMB  = 256
	DefaultIterableBaseURL    = "https://api.iterable.com"
	DefaultAuthorizerCacheTTL = 5 * time.Minute
	DefaultThrottleRate       = 50
	DefaultThrottleBurst      = 100
	DefaultMaxMessageAge      = 3 * time.Hour
)

// visibilityFactor is the ratio of the queue's visibility timeout to the
// forwarder's timeout. AWS recommends six for queues that Lambda polls, and
// a message a run held when the function timed out stays hidden until
// well after that run ended.
const visibilityFactor = 6

// Visibility returns the queue's visibility timeout, which the forwarder
// also passes to each receive.
func (c Config) Visibility() time.Duration { return visibilityFactor * c.ForwarderTimeout }

// contextKeys are the context names of the settings, in Config's order.
var contextKeys = []string{
	"stackName", "maxReceiveCount", "forwardEvery", "forwarderTimeout", "forwarderMemoryMB",
	"iterableBaseUrl", "iterableKeySecret", "iterableKeyParameter", "webhookKeysSecret",
	"webhookKeysParameter", "authorizerCacheTtl", "throttleRate", "throttleBurst",
	"maxMessageAge", "alarmTopicArn", "mappingFile",
}

// ConfigFromContext reads and validates the settings. lookup returns a
// context value, or nil when it is not set. The error names each context
// key at fault with the values it accepts.
func ConfigFromContext(lookup func(key string) any) (Config, error) {
	r := contextReader{lookup: lookup}
	c := Config{
		StackName:            r.str("stackName", DefaultStackName),
		MaxReceiveCount:      r.integer("maxReceiveCount", DefaultMaxReceiveCount),
		ForwardEvery:         r.duration("forwardEvery", DefaultForwardEvery),
		ForwarderTimeout:     r.duration("forwarderTimeout", DefaultForwarderTimeout),
		ForwarderMemoryMB:    r.integer("forwarderMemoryMB", DefaultForwarderMemoryMB),
		IterableBaseURL:      r.str("iterableBaseUrl", DefaultIterableBaseURL),
		IterableKeySecret:    r.str("iterableKeySecret", ""),
		IterableKeyParameter: r.str("iterableKeyParameter", ""),
		WebhookKeysSecret:    r.str("webhookKeysSecret", ""),
		WebhookKeysParameter: r.str("webhookKeysParameter", ""),
		AuthorizerCacheTTL:   r.duration("authorizerCacheTtl", DefaultAuthorizerCacheTTL),
		ThrottleRate:         r.float("throttleRate", DefaultThrottleRate),
		ThrottleBurst:        r.integer("throttleBurst", DefaultThrottleBurst),
		MaxMessageAge:        r.duration("maxMessageAge", DefaultMaxMessageAge),
		AlarmTopicArn:        r.str("alarmTopicArn", ""),
		MappingFile:          r.str("mappingFile", ""),
	}
	if err := errors.Join(append(r.errs, c.validate()...)...); err != nil {
		return Config{}, fmt.Errorf("invalid deployment settings:\n%w", err)
	}
	return c, nil
}

// stackNamePattern is CloudFormation's rule for stack names.
var stackNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

func (c Config) validate() []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(stackNamePattern.MatchString(c.StackName),
		"stackName %q: expected a letter, then letters, digits and hyphens, at most 128", c.StackName)
	check(c.MaxReceiveCount >= 1 && c.MaxReceiveCount <= 1000,
		"maxReceiveCount %d: expected 1 to 1000, the range SQS accepts", c.MaxReceiveCount)
	check(c.ForwardEvery >= time.Minute && c.ForwardEvery <= 12*time.Hour && c.ForwardEvery%time.Minute == 0,
		"forwardEvery %s: expected whole minutes from 1m to 12h", c.ForwardEvery)
	check(c.ForwarderTimeout >= time.Minute && c.ForwarderTimeout <= 15*time.Minute && c.ForwarderTimeout%time.Second == 0,
		"forwarderTimeout %s: expected whole seconds from 1m to 15m, the longest Lambda timeout", c.ForwarderTimeout)
	check(c.ForwarderMemoryMB >= 128 && c.ForwarderMemoryMB <= 10240,
		"forwarderMemoryMB %d: expected 128 to 10240", c.ForwarderMemoryMB)

	u, err := url.Parse(c.IterableBaseURL)
	check(err == nil && u.Scheme == "https" && u.Host != "",
		"iterableBaseUrl %q: expected https://api.iterable.com or https://api.eu.iterable.com", c.IterableBaseURL)
	check(c.IterableKeySecret == "" || c.IterableKeyParameter == "",
		"iterableKeySecret and iterableKeyParameter are both set: set at most one")
	check(c.WebhookKeysSecret == "" || c.WebhookKeysParameter == "",
		"webhookKeysSecret and webhookKeysParameter are both set: set at most one")

	check(c.AuthorizerCacheTTL >= 0 && c.AuthorizerCacheTTL <= time.Hour && c.AuthorizerCacheTTL%time.Second == 0,
		"authorizerCacheTtl %s: expected whole seconds from 0s to 1h", c.AuthorizerCacheTTL)
	check(c.ThrottleRate > 0 && c.ThrottleRate <= 10000,
		"throttleRate %g: expected more than 0 and at most 10000 requests per second", c.ThrottleRate)
	check(c.ThrottleBurst >= 1 && c.ThrottleBurst <= 5000,
		"throttleBurst %d: expected 1 to 5000", c.ThrottleBurst)
	check(c.MaxMessageAge >= c.ForwardEvery && c.MaxMessageAge <= 14*24*time.Hour,
		"maxMessageAge %s: expected at least forwardEvery (%s) and at most 14 days", c.MaxMessageAge, c.ForwardEvery)
	check(c.AlarmTopicArn == "" || strings.HasPrefix(c.AlarmTopicArn, "arn:"),
		"alarmTopicArn %q: expected an SNS topic ARN", c.AlarmTopicArn)
	return errs
}

// formatDuration is time.Duration.String without zero minutes and seconds:
// "1h" and "1h30m" in place of "1h0m0s" and "1h30m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// contextReader reads typed context values and collects one error per
// invalid value. Command-line values arrive as strings and cdk.json values
// as JSON types, so each reader accepts both.
type contextReader struct {
	lookup func(key string) any
	errs   []error
}

func (r *contextReader) raw(key string) (string, bool) {
	switch v := r.lookup(key).(type) {
	case nil:
		return "", false
	case string:
		return strings.TrimSpace(v), strings.TrimSpace(v) != ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	default:
		return fmt.Sprint(v), true
	}
}

func (r *contextReader) str(key, def string) string {
	if v, ok := r.raw(key); ok {
		return v
	}
	return def
}

func (r *contextReader) integer(key string, def int) int {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s %q: expected a whole number", key, v))
		return def
	}
	return n
}

func (r *contextReader) float(key string, def float64) float64 {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s %q: expected a number", key, v))
		return def
	}
	return f
}

func (r *contextReader) duration(key string, def time.Duration) time.Duration {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s %q: expected a duration such as 90s, 15m or 1h", key, v))
		return def
	}
	return d
}
