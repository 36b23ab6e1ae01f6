// Command layover-lambda is the bootstrap of Layover's AWS Lambda functions
// on the provided.al2023 runtime. LAYOVER_LAMBDA_HANDLER selects what it
// runs: "forward" drains the SQS queue into Iterable on a schedule, and
// "authorize" is the API Gateway authorizer of the webhook. The package
// serverless documents the other environment variables.
//
// Build it for Lambda with:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -o bootstrap ./cmd/layover-lambda
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/layover-dev/layover/serverless"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log, err := serverless.NewLogger(os.LookupEnv, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "layover-lambda:", err)
		os.Exit(2)
	}
	handler, err := serverless.NewHandler(context.Background(), os.LookupEnv, log, "layover/"+version)
	if err != nil {
		// Lambda reports the exit as an initialization error and keeps the
		// log line in the function's log group.
		log.Error("layover-lambda cannot start", "error", err)
		os.Exit(2)
	}
	lambda.Start(handler)
}
