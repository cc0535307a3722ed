package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/tools"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, decode and list tokens",
	}
	cmd.AddCommand(newTokenIssueCmd(g), newTokenDecodeCmd(g), newTokenListCmd(g))
	return cmd
}

func newTokenIssueCmd(g *globals) *cobra.Command {
	var (
		scopes []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "issue <client-id> [expires-in]",
		Short: "Mint a token for a client and print it with a ready MCP client config",
		Long: `Mint a token for a client, record it in the registry, and print it with a
ready MCP client configuration (or JSON with --json).

expires-in is <number><unit> with unit d, h, m or s, or "never" (only when
MCP_ALLOW_NEVER_EXPIRING=true). Default: MCP_TOKEN_EXPIRY (30d).
Suggested lifetimes: dev/test 7-30d, personal 30-90d, production 90-180d,
enterprise 180-365d.`,
		Example: `  mcpauth token issue my-app 90d
  mcpauth token issue research-bot 30d --scope tools:call
  mcpauth token issue ci-admin 7d --scope admin --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, logger, err := g.load(cmd)
			if err != nil {
				return err
			}
			a, err := newApp(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			defer a.Close()
			expiry := a.policy.defaultExpiry
			if len(args) == 2 {
				if expiry, err = auth.ParseExpiry(args[1]); err != nil {
					return err
				}
			}
			tok, err := a.issuer.Issue(cmd.Context(), auth.IssueRequest{
				ClientID: args[0], Expiry: expiry, Scopes: scopes, Caller: localAdmin(),
			})
			if err != nil {
				return err
			}
			logger.Info("token issued", "client_id", tok.ClientID, "jti", tok.JTI, "issued_by", tok.IssuedBy)
			out := tools.Issued{Token: tok, Expiry: expiry, PublicURL: cfg.publicURL(), ServerName: "mcpauth", Issuer: cfg.Issuer}
			if asJSON {
				return writeJSON(g.stdout, out.Result())
			}
			_, err = io.WriteString(g.stdout, out.Text())
			return err
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "scope to grant (repeatable), e.g. --scope admin")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (token, jti, client_id, scopes, issued_at, expires_at, config)")
	return cmd
}

func newTokenDecodeCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "decode [token|-]",
		Short: "Decode a token and check it against this server's secret",
		Long: `Decode a token: header, claims, whether the signature is valid with this
server's secret, why not, and time left. With no argument or "-", the token is
read from stdin (keeps it out of shell history). Exit status 2 when the token
is not valid.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok := ""
			if len(args) == 1 && args[0] != "-" {
				tok = args[0]
			} else {
				line, err := bufio.NewReader(io.LimitReader(g.stdin, 1<<20)).ReadString('\n')
				if err != nil && err != io.EOF {
					return fmt.Errorf("read token from stdin: %w", err)
				}
				tok = line
			}
			tok = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tok), "Bearer "))
			cfg, logger, err := g.load(cmd)
			if err != nil {
				return err
			}
			a, err := newApp(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			defer a.Close()
			in := a.verifier.Inspect(tok)
			if asJSON {
				err = writeJSON(g.stdout, in)
			} else {
				_, err = io.WriteString(g.stdout, tools.FormatInspection(in))
			}
			if err != nil {
				return err
			}
			if !in.Valid {
				return exitError(2)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	var (
		client string
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recorded tokens (active ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := g.load(cmd)
			if err != nil {
				return err
			}
			a, err := newApp(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			defer a.Close()
			toks, err := a.reg.ListTokens(cmd.Context(), client)
			if err != nil {
				return err
			}
			now := time.Now()
			type row struct {
				JTI       string   `json:"jti"`
				ClientID  string   `json:"client_id"`
				Scopes    []string `json:"scopes"`
				IssuedAt  string   `json:"issued_at"`
				ExpiresAt *string  `json:"expires_at"`
				IssuedBy  string   `json:"issued_by"`
				Expired   bool     `json:"expired"`
			}
			rows := []row{}
			for _, t := range toks {
				expired := !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now)
				if expired && !all {
					continue
				}
				r := row{JTI: t.JTI, ClientID: t.ClientID, Scopes: append([]string{}, t.Scopes...), IssuedAt: t.IssuedAt.Format(time.RFC3339), IssuedBy: t.IssuedBy, Expired: expired}
				if !t.ExpiresAt.IsZero() {
					s := t.ExpiresAt.Format(time.RFC3339)
					r.ExpiresAt = &s
				}
				rows = append(rows, r)
			}
			if asJSON {
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stdout, "No tokens.")
				return nil
			}
			for _, r := range rows {
				exp := "never"
				if r.ExpiresAt != nil {
					exp = *r.ExpiresAt
				}
				fmt.Fprintf(g.stdout, "%s  %-24s  expires %-20s  scopes [%s]\n", r.JTI, r.ClientID, exp, strings.Join(r.Scopes, " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&client, "client", "", "only this client's tokens")
	cmd.Flags().BoolVar(&all, "all", false, "include expired tokens")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
