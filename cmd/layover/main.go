// Command layover is a store-and-forward relay from mParticle's Webhook
// output to Iterable's bulk event API.
//
// Usage:
//
//	layover serve       ingest webhooks and forward on a schedule
//	layover forward     one drain run, then exit
//	layover demo        run the whole path against a local Iterable simulator
//	layover queue stats show the queue's counters
//	layover dlq ...     list, show, redrive or purge dead-lettered messages
//	layover rejected    list events Iterable will never accept, with reasons
//	layover version     print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses of layover forward and the other commands.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnavailable = 75 // EX_TEMPFAIL: Iterable unavailable, messages kept for the next run
)

const usage = `layover relays mParticle webhook batches to Iterable's trackBulk API.

Usage:
  layover serve               ingest POST /event-batch and forward on a schedule
  layover forward             drain the queue once, then exit
  layover demo                run the whole path against a local Iterable simulator
  layover simulate            run the Iterable simulator until Ctrl-C, for forward runs by hand
  layover queue stats         show messages by state and the age of the oldest
  layover dlq list|show|redrive|purge
                              inspect and redrive dead-lettered messages
  layover rejected list       list events Iterable rejected, with the reason
  layover version             print the version

Run "layover COMMAND -h" for the flags of a command. Every flag can also be
set with the environment variable named in its help text.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, stdout, stderr)
	case "forward":
		err = runForward(ctx, rest, stdout, stderr)
	case "demo":
		err = runDemo(ctx, rest, stdout, stderr)
	case "simulate":
		err = runSimulate(ctx, rest, stdout, stderr)
	case "queue":
		err = runQueue(ctx, rest, stdout, stderr)
	case "dlq":
		err = runDLQ(ctx, rest, stdout, stderr)
	case "rejected":
		err = runRejected(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "layover: version takes no arguments, got %q\n", rest[0])
			return exitUsage
		}
		fmt.Fprintln(stdout, "layover", version)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "layover: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

// usageError marks an error in the command line or configuration.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitCode prints err and maps it to an exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	switch {
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "layover:", err)
		return exitUsage
	case errors.Is(err, errUnavailable):
		fmt.Fprintln(stderr, "layover:", err)
		return exitUnavailable
	default:
		fmt.Fprintln(stderr, "layover:", err)
		return exitFailure
	}
}
