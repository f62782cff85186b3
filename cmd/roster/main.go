// Command roster is the CLI of Roster, the workforce identity lifecycle
// engine: HR records in, role policies applied to every app, every change
// in a tamper-evident audit log.
//
// Exit codes: 0 success; 1 error; 2 `plan --detailed-exitcode` found
// changes; 3 the plan exceeds the safety thresholds and waits for
// `roster approve`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI and returns the exit code; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{}
	root := newRoot(g, stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	return 1
}

func newRoot(g *globals, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "roster",
		Short: "Workforce identity lifecycle: HR in, access in every app out, all of it audited",
		Long: `Roster gives every worker exactly the access their role needs in every app,
from their first day to their last, and proves it.

HR records (SCIM 2.0 through ` + "`roster serve`" + `, or CSV import) say who joins,
moves and leaves.
Role policies in YAML say which access each role gets. ` + "`roster plan`" + ` shows
what would change, ` + "`roster apply`" + ` makes every app match, and every change is
written to a hash-chained audit log that ` + "`roster audit verify`" + ` checks.

Start with ` + "`roster demo`" + `: it runs the whole story on a sample company with
in-process apps, in seconds.

While ` + "`roster serve`" + ` runs, every command goes through its admin socket in
the data dir (it holds the data file); without a server, commands open the
data file themselves. --server URL with a token (--token or ROSTER_TOKEN)
reaches a server on another machine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelWarn
			if g.verbose {
				level = slog.LevelDebug
			}
			g.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "roster.yaml", "path of the config file")
	pf.StringVar(&g.dataDir, "data-dir", "", "data directory holding roster.db (overrides data_dir in the config)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug details to stderr")
	pf.StringVar(&g.server, "server", "", "reach the roster serve at this URL through its admin API (https://HOST:PORT) instead of the data dir's; needs a token")
	pf.StringVar(&g.token, "token", "", "admin API token for --server (prefer the ROSTER_TOKEN environment variable: flags show in ps)")
	g.logger = slog.New(slog.DiscardHandler)

	root.AddCommand(
		newDemoCmd(g),
		newHRCmd(g),
		newPlanCmd(g),
		newApplyCmd(g),
		newApproveCmd(g),
		newRejectCmd(g),
		newStatusCmd(g),
		newWorkersCmd(g),
		newReloadCmd(g),
		newServeCmd(g),
		newPolicyCmd(g),
		newAuditCmd(g),
		newConfigCmd(g),
		newConnectorsCmd(g),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of roster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			goVersion := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "roster %s (%s)\n", versionString(), goVersion)
			return nil
		},
	}
}

// versionString is the version of this binary: set at build time, else
// the module's, else "dev".
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = bi.Main.Version
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return v
}
