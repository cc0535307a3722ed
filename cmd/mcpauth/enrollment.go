package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newEnrollmentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enrollment",
		Short: "Enrollment codes that let MCP clients sign in by themselves (OAuth)",
	}
	var (
		scopes []string
		ttl    time.Duration
		asJSON bool
	)
	create := &cobra.Command{
		Use:   "create <name>",
		Short: "Create a one-time enrollment code for a client that signs in with OAuth",
		Long: `Create a one-time, short-lived enrollment code. Whoever adds this server to an
MCP client that signs in by itself (claude.ai custom connectors, ChatGPT, the
MCP Inspector) types it on the consent page. The client's tokens carry <name>
as client id and at most the given scopes; they are recorded, listed and
revocable like every other token.`,
		Example: `  mcpauth enrollment create claude-ai --scope tools:call
  mcpauth enrollment create inspector --scope admin --ttl 30m --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			e, err := a.OAuth.CreateEnrollment(cmd.Context(), localAdmin(), args[0], scopes, ttl)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, e)
			}
			_, err = fmt.Fprintf(g.stdout, "Enrollment code: %s\nClient id:       %s\nScopes:          %s\nValid until:     %s (single use)\n\n"+
				"Add %s/mcp as a custom connector in the MCP client and type the code when its sign-in page asks.\n",
				e.Code, e.Name, strings.Join(e.Scopes, " "), e.ExpiresAt.Format(time.RFC3339), a.cfg.publicURL())
			return err
		},
	}
	create.Flags().StringArrayVar(&scopes, "scope", nil, "scope the client may be granted (repeatable)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long the code is valid (default MCP_ENROLLMENT_TTL, 15m; at most 24h)")
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON with a code field")
	cmd.AddCommand(create)
	return cmd
}
