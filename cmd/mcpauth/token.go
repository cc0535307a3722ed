package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/tools"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, decode and list tokens",
	}
	cmd.AddCommand(newTokenIssueCmd(g), newTokenDecodeCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g), newTokenImportCmd(g))
	return cmd
}

// cliDefaultLifetime is token issue's default lifetime: the token
// guide's 30d.
const cliDefaultLifetime = 30 * 24 * time.Hour

func newTokenIssueCmd(g *globals) *cobra.Command {
	var (
		scopes []string
		asJSON bool
		client string
	)
	cmd := &cobra.Command{
		Use:   "issue <client-id> [expires-in]",
		Short: "Mint a token for a client and print it with a ready MCP client config",
		Long: `Mint a token for a client, record it in the registry, and print it with a
ready MCP client configuration (or JSON with --json).

expires-in is <number><unit> with unit d, h, m or s, or "never" (only when
MCP_ALLOW_NEVER_EXPIRING=true). Default: 30d, as the token guide's script
(the HTTP token API and the issue_token tool default to MCP_TOKEN_EXPIRY, 24h).
Suggested lifetimes: dev/test 7-30d, personal 30-90d, production 90-180d,
enterprise 180-365d.`,
		Example: `  mcpauth token issue my-app 90d
  mcpauth token issue research-bot 30d --scope tools:call
  mcpauth token issue ci-admin 7d --scope admin --json
  mcpauth token issue my-laptop 30d --client cursor`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			kind, err := tools.CheckClientKind(client)
			if err != nil {
				return err
			}
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			expiry := auth.Expiry{Duration: cliDefaultLifetime}
			if len(args) == 2 {
				if expiry, err = auth.ParseExpiry(args[1]); err != nil {
					return err
				}
			}
			tok, err := a.Issuer.Issue(cmd.Context(), auth.IssueRequest{
				ClientID: args[0], Expiry: expiry, Scopes: scopes, Caller: localAdmin(), Via: "cli",
			})
			if err != nil {
				return err
			}
			out := tools.Issued{Token: tok, Expiry: expiry, PublicURL: a.cfg.publicURL(), ServerName: "mcpauth", Issuer: a.cfg.Issuer, Client: kind}
			if asJSON {
				return writeJSON(g.stdout, out.Result())
			}
			_, err = io.WriteString(g.stdout, out.Text())
			return err
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "scope to grant (repeatable), e.g. --scope admin")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (token, jti, client_id, scopes, issued_at, expires_at, config, configs)")
	cmd.Flags().StringVar(&client, "client", tools.ClientClaudeDesktop, "client config to show: "+strings.Join(tools.ClientKinds, ", "))
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
			in := a.Verifier.Inspect(tok)
			if asJSON {
				err = writeJSON(g.stdout, in)
			} else {
				_, err = io.WriteString(g.stdout, tools.FormatInspection(in))
			}
			if err != nil {
				return err
			}
			if !in.Valid {
				// Exit 2 for scripts, with the reason for people.
				return exitError{code: 2, reason: "not valid here: " + in.Reason}
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
		Short: "List recorded tokens (active ones unless --all shows expired and revoked too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			toks, err := a.Registry.ListTokens(cmd.Context(), client)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := []tokenRow{}
			for _, t := range toks {
				if !all && !t.Active(now) {
					continue
				}
				rows = append(rows, newTokenRow(t, now, a.Keys))
			}
			if asJSON {
				return writeJSON(g.stdout, rows)
			}
			if len(rows) == 0 {
				_, err = fmt.Fprintln(g.stdout, "No tokens.")
				return err
			}
			var b strings.Builder
			for _, r := range rows {
				exp := "never"
				if r.ExpiresAt != nil {
					exp = *r.ExpiresAt
				}
				state := "active"
				switch {
				case r.Revoked:
					state = "REVOKED"
				case r.Expired:
					state = "expired"
				case r.KeyRetired:
					state = "KEY RETIRED"
				}
				kid := r.KeyID
				if kid == "" {
					kid = "-"
				}
				fmt.Fprintf(&b, "%s  %-24s  %-7s  expires %-20s  key %-16s  scopes [%s]\n", r.JTI, r.ClientID, state, exp, kid, strings.Join(r.Scopes, " "))
			}
			_, err = io.WriteString(g.stdout, b.String())
			return err
		},
	}
	cmd.Flags().StringVar(&client, "client", "", "only this client's tokens")
	cmd.Flags().BoolVar(&all, "all", false, "include expired and revoked tokens")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// tokenRow is one token as the CLI prints it.
type tokenRow struct {
	JTI          string   `json:"jti"`
	ClientID     string   `json:"client_id"`
	Scopes       []string `json:"scopes"`
	IssuedAt     string   `json:"issued_at"`
	ExpiresAt    *string  `json:"expires_at"`
	IssuedBy     string   `json:"issued_by"`
	Expired      bool     `json:"expired"`
	Revoked      bool     `json:"revoked"`
	RevokedAt    *string  `json:"revoked_at,omitempty"`
	RevokedBy    string   `json:"revoked_by,omitempty"`
	RevokeReason string   `json:"revoke_reason,omitempty"`
	// KeyID is the kid of the key that signed it ("" when not recorded);
	// KeyRetired, that this key is no longer configured, so the token is
	// refused.
	KeyID      string `json:"kid,omitempty"`
	KeyRetired bool   `json:"key_retired,omitempty"`
}

func newTokenRow(t registry.Token, now time.Time, ring *keys.Ring) tokenRow {
	r := tokenRow{
		JTI: t.JTI, ClientID: t.ClientID, Scopes: append([]string{}, t.Scopes...),
		IssuedAt: t.IssuedAt.Format(time.RFC3339), IssuedBy: t.IssuedBy,
		Expired: !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now), Revoked: t.Revoked(),
		RevokedBy: t.RevokedBy, RevokeReason: t.RevokeReason, KeyID: t.KeyID,
	}
	if t.KeyID != "" && ring != nil {
		_, known := ring.Lookup(t.KeyID)
		r.KeyRetired = !known
	}
	if !t.ExpiresAt.IsZero() {
		s := t.ExpiresAt.Format(time.RFC3339)
		r.ExpiresAt = &s
	}
	if t.Revoked() {
		s := t.RevokedAt.Format(time.RFC3339)
		r.RevokedAt = &s
	}
	return r
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	var (
		client string
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "revoke <jti|token> | --client <id>",
		Short: "Revoke one token (by jti or the token itself) or every token of a client",
		Long: `Revoke one token, by its jti or the token itself, or every token of a client
with --client. Running servers refuse a revoked token on its next request (a
server sharing this registry picks it up within MCP_REVOCATION_RESYNC, at once
on PostgreSQL) and close its open sessions. Revoking twice changes nothing.`,
		Example: `  mcpauth token revoke 3f2a9c...e1 --reason "laptop stolen"
  mcpauth token revoke --client research-bot --reason "project ended"`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case client == "" && len(args) != 1:
				return errors.New("give a jti or token to revoke, or --client <id>")
			case client != "" && len(args) != 0:
				return errors.New("give either a jti/token or --client, not both")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			by := localAdmin().Subject
			var toks []registry.Token
			if client != "" {
				if err := auth.ValidateClientID(client); err != nil {
					return err
				}
				if toks, err = a.Revoker.RevokeClient(cmd.Context(), client, by, reason); err != nil {
					return err
				}
			} else {
				jti := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(args[0]), "Bearer "))
				if strings.Count(jti, ".") == 2 {
					in := a.Verifier.Inspect(jti)
					id := in.JTI
					if !in.SignatureValid || id == "" {
						return errors.New("cannot revoke: this token was not signed by this server or has no jti")
					}
					jti = id
				}
				t, already, err := a.Revoker.RevokeJTI(cmd.Context(), jti, by, reason)
				if err != nil {
					return err
				}
				if already { // a note only: the result follows on stdout
					_, _ = fmt.Fprintf(g.stderr, "token %s was already revoked at %s; nothing changed\n", t.JTI, t.RevokedAt.Format(time.RFC3339))
				}
				toks = []registry.Token{t}
			}
			now := time.Now()
			rows := make([]tokenRow, 0, len(toks))
			for _, t := range toks {
				rows = append(rows, newTokenRow(t, now, a.Keys))
			}
			if asJSON {
				return writeJSON(g.stdout, rows)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "Revoked %d token(s).\n", len(rows))
			for _, r := range rows {
				fmt.Fprintf(&b, "  %s  %s\n", r.JTI, r.ClientID)
			}
			_, err = io.WriteString(g.stdout, b.String())
			return err
		},
	}
	cmd.Flags().StringVar(&client, "client", "", "revoke every token of this client id")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded with who and when)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// tokenArg is the token a command was given: its argument, or with none
// (or "-") the first line of stdin, which keeps it out of shell history;
// a "Bearer " prefix is dropped.
func tokenArg(args []string, stdin io.Reader) (string, error) {
	tok := ""
	if len(args) == 1 && args[0] != "-" {
		tok = args[0]
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 1<<20)).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("read token from stdin: %w", err)
		}
		tok = line
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tok), "Bearer ")), nil
}
