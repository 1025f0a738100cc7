package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0 // the input was fully handled (rejects included)
	exitFailure = 1 // a runtime failure: I/O, corrupt or locked state
	exitUsage   = 2 // a usage error
)

const usage = `onceflow: write each new CloudEvent of a JSON Lines stream exactly once,
across duplicates, reordering, reruns and crashes.

Usage:
  onceflow run     --state DIR --in FILE|- [--out FILE|-] [--rejects FILE]
                   [--order arrival|sequence] [--window DURATION] [--shards N]
                   [--max-event-bytes N]
  onceflow inspect --state DIR --source S --id I
  onceflow stats   --state DIR
  onceflow gen     [--events N] [--dup RATE] [--bad RATE] [--keys K]
                   [--shuffle WINDOW] [--seed S] [--sequence] [--out FILE]
  onceflow help [COMMAND]

Commands:
  run      deduplicate a stream: write every new, valid event once to --out,
           invalid lines to --rejects, remember identities in --state
  inspect  print the stored record of one event as JSON
  stats    print the state's window, counts, tier figures and file size as JSON
  gen      write a synthetic CloudEvents stream for demos and benchmarks

Run 'onceflow COMMAND --help' for the flags of a command.

Exit status: 0 when the input was fully handled (rejected lines included),
1 on a runtime failure (I/O, corrupt state, state locked by another
process), 2 on a usage error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal interrupts the run, which then stops cleanly; a
	// second one gets the default action and kills the process.
	context.AfterFunc(ctx, stop)
	code := runContext(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args (without the program name) and returns
// the exit code. It never calls os.Exit, so tests can call it in process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdin, stdout, stderr)
}

// runContext is run with a context whose end interrupts a run.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdin, stdout, stderr)
	case "inspect":
		return cmdInspect(rest, stdout, stderr)
	case "stats":
		return cmdStats(rest, stdout, stderr)
	case "gen":
		return cmdGen(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(rest) == 1 && cmd == "help" && rest[0] != "help" {
			return runContext(ctx, []string{rest[0], "--help"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "onceflow: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// usageError is a bad command line: exit 2 with the command's usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags parses args into fs and turns its outcome into an exit code
// when parsing ends the command: --help prints help to stdout (exit 0), a
// bad flag prints the error and the help to stderr (exit 2).
func parseFlags(fs *flag.FlagSet, help string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, help)
		return exitOK, true
	case err != nil:
		fmt.Fprintf(stderr, "onceflow %s: %v\n\n%s", fs.Name(), err, help)
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "onceflow %s: unexpected argument %q\n\n%s", fs.Name(), fs.Arg(0), help)
		return exitUsage, true
	}
	return 0, false
}

// reportUsage prints a usage error of command name with its help.
func reportUsage(stderr io.Writer, name, help string, err error) int {
	fmt.Fprintf(stderr, "onceflow %s: %v\n\n%s", name, err, help)
	return exitUsage
}

// The decoder's default limits (see onceflow.WithMaxEventBytes and
// onceflow.WithMaxDepth): the CLI's default line limit, and the depth gen's
// too_deep lines exceed.
const (
	defaultMaxEventBytes = 1 << 20
	defaultMaxDepth      = 64
)
