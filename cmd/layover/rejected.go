package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// runRejected implements layover rejected list.
func runRejected(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpArg(args[0]) {
		args = []string{"list", "-h"} // the help of the only rejected command
	}
	if len(args) == 0 {
		return usagef("usage: layover rejected list [flags]")
	}
	if args[0] != "list" {
		return usagef("unknown rejected command %q: usage: layover rejected list [flags]", args[0])
	}
	fs := newFlagSet("rejected list", stderr)
	fs.queueFlags()
	limit := fs.Int("limit", 100, "most events to list, newest first")
	full := fs.Bool("events", false, "also print each event as sent")
	quietLogs(stderr)
	c, err := fs.parse(args[1:])
	if err != nil {
		return err
	}
	if *limit < 1 {
		return usagef("invalid -limit %d: expected at least 1", *limit)
	}
	eng, err := openQueue(ctx, c, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	if eng.rejects == nil {
		return fmt.Errorf("the %s queue engine does not store rejected events; they are in the forwarder's log", eng.name)
	}
	rejected, err := eng.rejects.ListRejected(ctx, *limit)
	if err != nil {
		return fmt.Errorf("list rejected events: %w", err)
	}
	if len(rejected) == 0 {
		fmt.Fprintln(stdout, "no rejected events")
		return nil
	}
	for _, r := range rejected {
		fmt.Fprintf(stdout, "%s  message=%s  event=%s  name=%q\n  reason: %s\n",
			r.At.UTC().Format(time.DateTime), r.MessageID, r.EventID, r.EventName, r.Reason)
		if *full {
			fmt.Fprintf(stdout, "  event: %s\n", r.Event)
		}
	}
	return nil
}
