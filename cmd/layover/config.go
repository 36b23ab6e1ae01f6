package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// isHelpArg reports whether arg, given in place of a subcommand, requests help.
func isHelpArg(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// errHelp is returned when -h was given; the usage is already printed.
var errHelp = errors.New("help requested")

// config holds every setting of every command; each command registers the
// groups it uses. Flags take their defaults from the environment.
type config struct {
	Listen       string
	APIKeys      string
	NoAuth       bool
	MaxBodyBytes int64

	APIKeysFile      string
	TLSCert          string
	TLSKey           string
	AllowedNetworks  string
	TrustedProxies   string
	MaxConnections   int
	MaxInFlight      int
	AuthFailureLimit int
	ReadTimeout      time.Duration

	DataDir         string
	Queue           string
	MaxReceiveCount int
	Retention       time.Duration
	DeadRetention   time.Duration

	Schedule    string
	IterableKey string
	IterableURL string
	MappingFile string
	BatchEvents int
	Rate        float64
	Concurrency int
	Visibility  time.Duration
	RetryBudget time.Duration

	LogLevel  string
	LogFormat string

	// envErrors holds, by flag name, the environment variables that failed
	// to parse. A flag given on the command line overrides its variable,
	// so parse reports only the others.
	envErrors map[string]error
}

// flagSet wraps a FlagSet with helpers that read defaults from environment
// variables and name the variable in the help text.
type flagSet struct {
	*flag.FlagSet
	cfg *config
}

func newFlagSet(name string, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		text, ok := commandHelp[name]
		if !ok {
			text = [2]string{"layover " + name + " [flags]", ""}
		}
		fmt.Fprintf(stderr, "usage: %s\n", text[0])
		if text[1] != "" {
			fmt.Fprintf(stderr, "%s\n", text[1])
		}
		fmt.Fprintln(stderr, "\nFlags (a name in parentheses is the environment variable that sets the default):")
		fs.PrintDefaults()
	}
	return &flagSet{FlagSet: fs, cfg: &config{}}
}

// commandHelp is the synopsis and the description that -h prints for each
// command, by flag set name.
var commandHelp = map[string][2]string{
	"serve": {"layover serve [flags]",
		"Accepts mParticle webhook batches on POST /event-batch, stores each before it answers,\n" +
			"and forwards them to Iterable's trackBulk API on a schedule."},
	"forward": {"layover forward [flags]",
		"Drains the queue once into Iterable's trackBulk API, then exits. Exit status 75 means\n" +
			"Iterable was unavailable and the messages are kept for the next run."},
	"demo": {"layover demo [flags]",
		"Stores sample batches, forwards them to a local Iterable simulator and prints what it received."},
	"simulate": {"layover simulate [flags]",
		"Runs the Iterable simulator on 127.0.0.1 until Ctrl-C, for forward runs by hand."},
	"queue stats": {"layover queue stats [flags]",
		"Prints the messages by state (visible, in flight, dead-lettered, expired) and the age of the oldest."},
	"dlq list": {"layover dlq list [flags]",
		"Lists the dead-lettered messages with the reason each was moved."},
	"dlq show": {"layover dlq show ID [flags]",
		"Prints the body of one dead-lettered message. layover dlq list prints the ids."},
	"dlq redrive": {"layover dlq redrive [flags]",
		"Moves every dead-lettered message back to the queue for the next forward run."},
	"dlq purge": {"layover dlq purge -yes [flags]",
		"Deletes every dead-lettered message for good."},
	"rejected list": {"layover rejected list [flags]",
		"Lists the events that Iterable rejected, with the reason."},
}

func (fs *flagSet) parse(args []string) (*config, error) {
	c, _, err := fs.parseArgs(args, 0)
	return c, err
}

// parseArgs is parse for a command that takes up to maxArgs arguments after
// its flags, which it returns.
func (fs *flagSet) parseArgs(args []string, maxArgs int) (*config, []string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, errHelp
		}
		return nil, nil, usageError{err}
	}
	if fs.NArg() > maxArgs {
		return nil, nil, usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(maxArgs))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	var envErrs []error
	for name, err := range fs.cfg.envErrors {
		if !onCommandLine[name] {
			envErrs = append(envErrs, err)
		}
	}
	slices.SortFunc(envErrs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	if err := errors.Join(envErrs...); err != nil {
		return nil, nil, usageError{err}
	}
	return fs.cfg, fs.Args(), nil
}

// envError records that the environment variable of flag name is invalid.
func (fs *flagSet) envError(name string, err error) {
	if fs.cfg.envErrors == nil {
		fs.cfg.envErrors = map[string]error{}
	}
	fs.cfg.envErrors[name] = err
}

func (fs *flagSet) str(p *string, name, env, def, help string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	fs.StringVar(p, name, def, help+" ("+env+")")
}

func (fs *flagSet) boolean(p *bool, name, env string, def bool, help string) {
	if v, ok := os.LookupEnv(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fs.envError(name, fmt.Errorf("invalid %s=%q: expected true or false", env, v))
		}
		def = b
	}
	fs.BoolVar(p, name, def, help+" ("+env+")")
}

func (fs *flagSet) integer(p *int, name, env string, def int, help string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			fs.envError(name, fmt.Errorf("invalid %s=%q: expected a whole number", env, v))
		}
		def = n
	}
	fs.IntVar(p, name, def, help+" ("+env+")")
}

func (fs *flagSet) int64(p *int64, name, env string, def int64, help string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			fs.envError(name, fmt.Errorf("invalid %s=%q: expected a whole number of bytes", env, v))
		}
		def = n
	}
	fs.Int64Var(p, name, def, help+" ("+env+")")
}

func (fs *flagSet) float(p *float64, name, env string, def float64, help string) {
	if v, ok := os.LookupEnv(env); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			fs.envError(name, fmt.Errorf("invalid %s=%q: expected a number", env, v))
		}
		def = f
	}
	fs.Float64Var(p, name, def, help+" ("+env+")")
}

func (fs *flagSet) duration(p *time.Duration, name, env string, def time.Duration, help string) {
	if v, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			fs.envError(name, fmt.Errorf("invalid %s=%q: expected a duration such as 90s, 15m or 96h", env, v))
		}
		def = d
	}
	fs.DurationVar(p, name, def, help+" ("+env+")")
}

// logFlags registers the logging settings.
func (fs *flagSet) logFlags() {
	c := fs.cfg
	fs.str(&c.LogLevel, "log-level", "LAYOVER_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	fs.str(&c.LogFormat, "log-format", "LAYOVER_LOG_FORMAT", "text", "log format: text or json")
}

// newLogger builds the process logger from the logging settings.
func newLogger(c *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, usagef("invalid log level %q (LAYOVER_LOG_LEVEL): expected debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch strings.ToLower(c.LogFormat) {
	case "text":
		log = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		log = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return nil, usagef("invalid log format %q (LAYOVER_LOG_FORMAT): expected text or json", c.LogFormat)
	}
	// Packages that log through slog.Default, such as the queue engines,
	// follow the same level and format.
	slog.SetDefault(log)
	return log, nil
}

// quietLogs keeps operator commands' output to warnings and errors, so that
// the queue engines' start-up lines do not mix with the command's output.
func quietLogs(stderr io.Writer) {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
