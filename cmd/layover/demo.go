package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/layover-dev/layover/iterable"
	"github.com/layover-dev/layover/iterable/iterabletest"
)

//go:embed samples/*.json
var samples embed.FS

// demoWebhookKey is the API key the demo's serve process accepts.
const demoWebhookKey = "demo-webhook-key"

// runDemo runs the whole path on loopback: an Iterable simulator, a real
// layover serve process with a temporary data folder, sample batches POSTed
// over HTTP, a layover forward process, and a summary of what the
// simulator received.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	keep := fs.Bool("keep", false, "keep the temporary data folder and print its path")
	if _, err := fs.parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find the layover binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "layover-demo-")
	if err != nil {
		return fmt.Errorf("demo: create a data folder: %w", err)
	}
	if *keep {
		fmt.Fprintf(stdout, "data folder: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	sim := iterabletest.New(iterabletest.Options{})
	simURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start the Iterable simulator: %w", err)
	}
	defer sim.Close()
	fmt.Fprintf(stdout, "1. Iterable simulator listening on %s\n", simURL)

	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"LAYOVER_LISTEN="+addr,
		"LAYOVER_API_KEYS="+demoWebhookKey,
		"LAYOVER_DATA_DIR="+dir,
		"LAYOVER_QUEUE=",
		"LAYOVER_SCHEDULE=off",
		"ITERABLE_API_KEY="+iterabletest.DefaultAPIKey,
		"ITERABLE_BASE_URL="+simURL,
	)
	var serveLog bytes.Buffer
	serve := exec.CommandContext(ctx, self, "serve")
	serve.Env, serve.Stdout, serve.Stderr = env, &serveLog, &serveLog
	if err := serve.Start(); err != nil {
		return fmt.Errorf("demo: start layover serve: %w", err)
	}
	defer serve.Process.Kill()
	base := "http://" + addr
	if err := waitReady(ctx, base+"/readyz", 15*time.Second); err != nil {
		return fmt.Errorf("demo: layover serve did not become ready: %w\n%s", err, serveLog.String())
	}
	fmt.Fprintf(stdout, "2. layover serve listening on %s, data folder %s\n", base, dir)

	if err := postSamples(ctx, base, stdout); err != nil {
		return err
	}
	if err := stopProcess(serve, 15*time.Second); err != nil {
		return fmt.Errorf("demo: stop layover serve: %w\n%s", err, serveLog.String())
	}

	fmt.Fprintln(stdout, "4. layover forward (one drain run):")
	fwd := exec.CommandContext(ctx, self, "forward", "-log-level", "error")
	fwd.Env, fwd.Stdout, fwd.Stderr = env, prefixWriter{stdout, "   "}, prefixWriter{stdout, "   "}
	if err := fwd.Run(); err != nil {
		return fmt.Errorf("demo: layover forward: %w", err)
	}
	printReceived(stdout, sim.Events(iterabletest.DefaultAPIKey))

	fmt.Fprintln(stdout, "6. events Iterable would never accept, kept with the reason (layover rejected list):")
	rej := exec.CommandContext(ctx, self, "rejected", "list")
	rej.Env, rej.Stdout, rej.Stderr = env, prefixWriter{stdout, "   "}, prefixWriter{stdout, "   "}
	return rej.Run()
}

func postSamples(ctx context.Context, base string, stdout io.Writer) error {
	names, err := samples.ReadDir("samples")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "3. POST /event-batch with sample mParticle batches:")
	for _, e := range names {
		body, err := samples.ReadFile(path.Join("samples", e.Name()))
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/event-batch", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+demoWebhookKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("demo: POST %s: %w", e.Name(), err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("demo: POST %s: HTTP %d: %s", e.Name(), resp.StatusCode, answer)
		}
		fmt.Fprintf(stdout, "   %-32s HTTP %d %s\n", e.Name(), resp.StatusCode, bytes.TrimSpace(answer))
	}
	return nil
}

func printReceived(stdout io.Writer, events []iterabletest.StoredEvent) {
	fmt.Fprint(stdout, "5. ")
	printEventCounts(stdout, events)
	fmt.Fprintln(stdout, "   the first three, as Iterable stored them:")
	for i, ev := range events {
		if i == 3 {
			break
		}
		b, _ := json.Marshal(iterable.Event{
			Email: ev.Email, UserID: ev.UserID, EventName: ev.EventName,
			ID: ev.ID, CreatedAt: ev.CreatedAt, DataFields: ev.DataFields,
		})
		fmt.Fprintf(stdout, "   %s\n", b)
	}
}

// printEventCounts prints how many events the simulator stored, in all
// and by name. An event sent again with the same id counts once, because
// the simulator updates it as Iterable does.
func printEventCounts(stdout io.Writer, events []iterabletest.StoredEvent) {
	if len(events) == 0 {
		fmt.Fprintln(stdout, "the Iterable simulator stored no events")
		return
	}
	counts := map[string]int{}
	for _, ev := range events {
		counts[ev.EventName]++
	}
	noun := "events"
	if len(events) == 1 {
		noun = "event"
	}
	fmt.Fprintf(stdout, "the Iterable simulator stored %d %s, one per event id:\n", len(events), noun)
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(stdout, "   %-30s %d\n", name, counts[name])
	}
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("demo: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls url until it returns 200 or the timeout passes.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	return waitReadyWith(ctx, http.DefaultClient, url, timeout)
}

// waitReadyWith is waitReady with the given client, such as one that
// trusts a test certificate.
func waitReadyWith(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopProcess sends SIGTERM and waits for a clean exit.
func stopProcess(cmd *exec.Cmd, timeout time.Duration) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		cmd.Process.Kill()
		return errors.New("timed out waiting for the process to exit")
	}
}

// prefixWriter indents every line written to it.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	text := strings.TrimRight(string(b), "\n")
	lines := strings.Split(text, "\n")
	for _, line := range lines {
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
