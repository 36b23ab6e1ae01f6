package serverless

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/config"
)

// NewHandler returns the handler that LAYOVER_LAMBDA_HANDLER selects, in a
// form that lambda.Start accepts: Forwarder.Handle for "forward" and
// Authorizer.Handle for "authorize". Its error names the variable at fault.
func NewHandler(ctx context.Context, env LookupEnv, log *slog.Logger, userAgent string) (any, error) {
	name, _ := env(EnvHandler)
	if name != HandlerForward && name != HandlerAuthorize {
		return nil, fmt.Errorf("invalid %s %q: expected %s or %s", EnvHandler, name, HandlerForward, HandlerAuthorize)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	secrets := NewSecretReader(awsCfg)
	if name == HandlerAuthorize {
		cfg, err := AuthorizerConfigFromEnv(env)
		if err != nil {
			return nil, err
		}
		return NewAuthorizer(cfg, secrets, log.With("component", "authorize")).Handle, nil
	}
	cfg, err := ForwardConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	f, err := NewForwarder(cfg, secrets, log, userAgent)
	if err != nil {
		return nil, err
	}
	return f.Handle, nil
}

// NewLogger returns a logger that writes to w at the level and in the
// format of LAYOVER_LOG_LEVEL (default info) and LAYOVER_LOG_FORMAT
// (default json).
func NewLogger(env LookupEnv, w io.Writer) (*slog.Logger, error) {
	r := envReader{env: env}
	levelName := r.str(EnvLogLevel, "info")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		return nil, fmt.Errorf("invalid %s %q: expected debug, info, warn or error", EnvLogLevel, levelName)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format := r.str(EnvLogFormat, "json"); format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid %s %q: expected json or text", EnvLogFormat, format)
	}
}
