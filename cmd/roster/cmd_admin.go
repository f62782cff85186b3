package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newWorkersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "workers", Short: "List workers; show one with their access and why"}
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List every stored worker with their status now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dialFor(cmd, output)
			if err != nil {
				return err
			}
			defer b.Close()
			ws, err := b.Workers(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				if ws == nil {
					ws = []workerSummary{}
				}
				return writeJSON(out, ws)
			}
			if len(ws) == 0 {
				fmt.Fprintln(out, "No workers yet: import HR records (roster hr import FILE.csv) or connect HR over SCIM (roster serve).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tEMAIL\tSTATUS\tTYPE\tTITLE\tNOT YET APPLIED")
			for _, w := range ws {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, orDash(strings.TrimSpace(w.DisplayName)), orDash(w.Email), w.Status,
					orDash(w.WorkerType), orDash(w.Title), orDash(w.Transition))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")

	var showOutput string
	show := &cobra.Command{
		Use:   "show WORKER",
		Short: "Show one worker (by id, e-mail or userName): status, roles and every grant with where it comes from",
		Long: `Show prints what ` + "`roster policy explain`" + ` prints: the worker, the roles
they match and why, and every entitlement with the roles or exceptions it
comes from.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.explain(cmd, showOutput, args[0])
		},
	}
	show.Flags().StringVarP(&showOutput, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(list, show)
	return cmd
}

func newRejectCmd(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "reject PLAN_ID",
		Short: "Reject a plan that waits for approval: it never runs",
		Long: `Reject records in the audit log that the pending plan must not run, with
the reason given. Its changes are planned again by the next apply or full
reconcile, and held for approval again if they still exceed the safety
thresholds: fix their cause (an HR feed that terminated people by mistake,
a policy change) first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			if _, err := b.Reject(cmd.Context(), cliActor(), args[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Plan %s rejected: it will not run.\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func newReloadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running roster serve load the policy files again",
		Long: `Reload makes a running ` + "`roster serve`" + ` read the configured policy files
again. A set that does not load is rejected with file:line for every
problem, and the policy in force keeps running. A set that loads is put in
force and recorded in the audit log; the next full reconcile carries it
out (run ` + "`roster plan`" + ` to see what changes, ` + "`roster apply`" + ` to carry
it out now).

Without a running server there is nothing to reload: every command reads
the policy files when it starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.dial(cmd)
			if err != nil {
				return err
			}
			defer b.Close()
			if _, local := b.(*localBackend); local {
				return errors.New("no roster serve answers for this data dir: reload changes the policy of a running server (pass --server URL to reach one elsewhere); without one, every command reads the policy files as they are")
			}
			res, err := b.Reload(cmd.Context(), cliActor())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !res.Changed {
				fmt.Fprintf(out, "Policy unchanged: %d roles in %d files (hash %s).\n", res.Roles, res.Files, short(res.Hash))
				return nil
			}
			fmt.Fprintf(out, "Policy reloaded: %d roles in %d files (hash %s).\n", res.Roles, res.Files, short(res.Hash))
			fmt.Fprintln(out, "The next full reconcile carries it out; `roster plan` shows what changes, `roster apply` carries it out now.")
			return nil
		},
	}
}
