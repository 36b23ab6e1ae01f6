package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/layover-dev/layover/queue"
)

const dlqUsage = `usage: layover dlq list|show ID|redrive|purge [flags]
  list      list dead-lettered messages with their reasons
  show ID   print one dead-lettered message's body
  redrive   move every dead-lettered message back to the queue
  purge     delete every dead-lettered message (needs -yes)`

// runDLQ implements layover dlq list|show|redrive|purge.
func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", dlqUsage)
	}
	sub, rest := args[0], args[1:]
	if isHelpArg(sub) {
		fmt.Fprintln(stdout, dlqUsage)
		return errHelp
	}
	switch sub {
	case "list", "show", "redrive", "purge":
	default:
		if strings.HasPrefix(sub, "-") {
			return usagef("flags go after the dlq command, as in layover dlq list %s ...\n%s", sub, dlqUsage)
		}
		return usagef("unknown dlq command %q\n%s", sub, dlqUsage)
	}
	fs := newFlagSet("dlq "+sub, stderr)
	fs.queueFlags()
	var limit int
	var yes bool
	switch sub {
	case "list":
		fs.IntVar(&limit, "limit", 100, "most messages to list")
	case "purge":
		fs.BoolVar(&yes, "yes", false, "confirm that every dead-lettered message is deleted for good")
	}
	var id string
	if sub == "show" && len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		id, rest = rest[0], rest[1:]
	}
	quietLogs(stderr)
	maxArgs := 0
	if sub == "show" && id == "" {
		maxArgs = 1 // the id may also follow the flags
	}
	c, positional, err := fs.parseArgs(rest, maxArgs)
	if err != nil {
		return err
	}
	if len(positional) == 1 {
		id = positional[0]
	}
	if sub == "list" && limit < 1 {
		return usagef("invalid -limit %d: expected at least 1", limit)
	}
	if sub == "show" && id == "" {
		return usagef("missing message id: run layover dlq show ID, with an id from layover dlq list")
	}
	if sub == "purge" && !yes {
		return usagef("purge deletes every dead-lettered message for good: run layover dlq purge -yes to confirm")
	}

	eng, err := openQueue(ctx, c, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	if eng.dead == nil {
		return fmt.Errorf("the %s queue engine has no dead-letter queue that layover can read", eng.name)
	}
	switch sub {
	case "list":
		return listDead(ctx, eng.dead, limit, stdout)
	case "show":
		return showDead(ctx, eng.dead, id, stdout)
	case "redrive":
		return redrive(ctx, eng, stdout)
	default:
		n, err := eng.dead.PurgeDead(ctx)
		if err != nil {
			return fmt.Errorf("purge dead-letter queue: %w", err)
		}
		fmt.Fprintf(stdout, "purged %d messages\n", n)
		return nil
	}
}

func listDead(ctx context.Context, dead queue.DeadLetters, limit int, stdout io.Writer) error {
	msgs, err := dead.ListDead(ctx, "", limit)
	if err != nil {
		return fmt.Errorf("list dead-letter queue: %w", err)
	}
	if len(msgs) == 0 {
		fmt.Fprintln(stdout, "the dead-letter queue is empty")
		return nil
	}
	fmt.Fprintf(stdout, "%-36s  %-20s  %8s  %7s  %s\n", "ID", "DEAD SINCE", "RECEIVES", "BYTES", "REASON")
	for _, m := range msgs {
		fmt.Fprintf(stdout, "%-36s  %-20s  %8d  %7d  %s\n", m.ID, m.DeadAt.UTC().Format(time.DateTime), m.ReceiveCount, len(m.Body), m.Reason)
	}
	if len(msgs) == limit {
		fmt.Fprintf(stdout, "(first %d shown; use -limit to see more)\n", limit)
	}
	return nil
}

func showDead(ctx context.Context, dead queue.DeadLetters, id string, stdout io.Writer) error {
	m, err := dead.GetDead(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return fmt.Errorf("no dead-lettered message has id %q: layover dlq list shows the ids", id)
	}
	if err != nil {
		return fmt.Errorf("show dead-lettered message: %w", err)
	}
	fmt.Fprintf(stdout, "id:            %s\nstored:        %s\ndead since:    %s\nreceive count: %d\nreason:        %s\n\n",
		m.ID, m.EnqueuedAt.UTC().Format(time.RFC3339), m.DeadAt.UTC().Format(time.RFC3339), m.ReceiveCount, m.Reason)
	_, err = stdout.Write(append(m.Body, '\n'))
	return err
}

// redrive moves dead-lettered messages back in batches and shows progress.
func redrive(ctx context.Context, eng *engine, stdout io.Writer) error {
	st, err := eng.Stats(ctx)
	if err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	total := st.DeadLettered
	moved := 0
	for {
		n, err := eng.dead.Redrive(ctx, 100)
		moved += n
		if err != nil {
			return fmt.Errorf("redrive stopped after %d messages: %w", moved, err)
		}
		if n == 0 {
			break
		}
		fmt.Fprintf(stdout, "redriven %d of %d\n", moved, max(total, int64(moved)))
	}
	noun := "messages"
	if moved == 1 {
		noun = "message"
	}
	fmt.Fprintf(stdout, "redrive done: %d %s back in the queue\n", moved, noun)
	return nil
}
