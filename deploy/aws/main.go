package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	err := run()
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy/aws:", err)
		os.Exit(1)
	}
}

// run builds the Lambda code and synthesizes the stack into CDK_OUTDIR
// (the CDK command line sets it).
func run() error {
	// The CDK reads CDK_OUTDIR in its Node.js process too, but that process
	// keeps the environment it started with, so pass the folder explicitly.
	props := &awscdk.AppProps{}
	if dir := os.Getenv("CDK_OUTDIR"); dir != "" {
		props.Outdir = &dir
	}
	app := awscdk.NewApp(props)
	cfg, err := ConfigFromContext(func(key string) any { return app.Node().TryGetContext(&key) })
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := repoRoot(wd)
	if err != nil {
		return err
	}
	codeDir, err := buildCode(root, cfg.MappingFile)
	if err != nil {
		return err
	}
	defer os.RemoveAll(codeDir)

	NewStack(app, cfg.StackName, &StackProps{
		StackProps: awscdk.StackProps{
			Description: jsii.String("Layover: mParticle webhook batches stored in SQS and forwarded to Iterable"),
		},
		Config:  cfg,
		CodeDir: codeDir,
	})
	app.Synth(nil)
	return nil
}
