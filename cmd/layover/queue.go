package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// runQueue implements layover queue stats.
func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpArg(args[0]) {
		args = []string{"stats", "-h"} // the help of the only queue command
	}
	if len(args) == 0 {
		return usagef("usage: layover queue stats [flags]")
	}
	if args[0] != "stats" {
		return usagef("unknown queue command %q: usage: layover queue stats [flags]", args[0])
	}
	fs := newFlagSet("queue stats", stderr)
	fs.queueFlags()
	quietLogs(stderr)
	c, err := fs.parse(args[1:])
	if err != nil {
		return err
	}
	eng, err := openQueue(ctx, c, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	st, err := eng.Stats(ctx)
	if err != nil {
		return fmt.Errorf("queue stats: %w", err)
	}
	fmt.Fprintf(stdout, "queue:          %s\n", describeQueue(c))
	fmt.Fprintf(stdout, "visible:        %d\n", st.Visible)
	fmt.Fprintf(stdout, "in flight:      %d\n", st.InFlight)
	fmt.Fprintf(stdout, "dead-lettered:  %d\n", st.DeadLettered)
	fmt.Fprintf(stdout, "expired:        %d\n", st.Expired)
	oldest := st.OldestAge.Round(time.Second).String()
	if st.Visible+st.InFlight == 0 {
		oldest = "none, the queue is empty"
	}
	fmt.Fprintf(stdout, "oldest message: %s\n", oldest)
	return nil
}
