package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth/auth"
)

func newTokenImportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import [token|-]",
		Short: "Record a token minted before mcpauth (by the operators' scripts) so it is listed and revocable",
		Long: `Record a token that operators' earlier scripts minted with this server's
secret, so that it is listed, decoded and revocable like one mcpauth issued.
The token must verify here: same secret, and its iss either MCP_ISSUER or one
of MCP_LEGACY_ISSUERS. A token without jti gets a stable id derived from its
signature (legacy-…), which list, decode and revoke use. Importing the same
token twice changes nothing. Reads the token from stdin with no argument.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			tok, err := tokenArg(args, g.stdin)
			if err != nil {
				return err
			}
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			c, err := a.Verifier.Verify(tok)
			if err != nil {
				return fmt.Errorf("cannot import: %s", auth.Message(err))
			}
			if rec, gerr := a.Registry.Get(cmd.Context(), c.ID); gerr == nil {
				_, err = fmt.Fprintf(g.stdout, "Already recorded: %s (client %s, issued by %s)\n", rec.JTI, rec.ClientID, rec.IssuedBy)
				return err
			}
			it := auth.IssuedToken{JTI: c.ID, ClientID: c.Subject, Scopes: c.Scope, IssuedBy: "import"}
			if c.IssuedAt != nil {
				it.IssuedAt = c.IssuedAt.Time
			} else {
				it.IssuedAt = time.Now()
			}
			if c.ExpiresAt != nil {
				it.ExpiresAt = c.ExpiresAt.Time
			}
			if err := a.Registry.Record(cmd.Context(), it); err != nil {
				return fmt.Errorf("cannot import: %w", err)
			}
			auth.Audit(cmd.Context(), a.log, auth.EventTokenImported, "jti", c.ID, "client_id", c.Subject, "iss", c.Issuer, "via", "cli")
			_, err = fmt.Fprintf(g.stdout, "Imported %s for client %s (issuer %q); revoke it with: mcpauth token revoke %s\n",
				c.ID, c.Subject, c.Issuer, c.ID)
			return err
		},
	}
}
