package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth/auth"
)

func newSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Generate secrets",
	}
	var asEnv bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print a fresh signing secret (32 random bytes as hex), or a production env block",
		Long: `Print a fresh signing secret: 32 random bytes as 64 hex characters.
Put it in MCP_JWT_SECRET (environment or .env file), never in the repository.
Rotating the secret invalidates every token signed with the old one.

With --env, print a whole production environment block with a fresh secret and
API key, ready for .env.production or your platform's settings.`,
		Example: `  echo "MCP_JWT_SECRET=$(mcpauth secret generate)" >> .env
  mcpauth secret generate --env > .env.production && chmod 600 .env.production`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := auth.GenerateSecret()
			if err != nil {
				return err
			}
			if !asEnv {
				_, err = fmt.Fprintln(g.stdout, s)
				return err
			}
			key, err := auth.GenerateSecret()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, envBlock, s, key)
			return err
		},
	}
	gen.Flags().BoolVar(&asEnv, "env", false, "print a production env block (MCP_JWT_SECRET, API_KEY, MCP_AUTH_ENABLED, …) with fresh values")
	cmd.AddCommand(gen)
	return cmd
}

// envBlock is the production environment printed by "secret generate
// --env", after the secret script of the production setup document: fresh
// secret and API key, auth on.
const envBlock = `# mcpauth production environment (generated; keep out of version control)
MCP_ENV=production
MCP_JWT_SECRET=%s
API_KEY=%s
MCP_AUTH_ENABLED=true
MCP_TOKEN_EXPIRY=24h
MCP_MAX_TOKEN_LIFETIME=180d
MCP_ALLOWED_CLIENTS=claude,chatgpt,cursor,vscode,continue
MCP_ADDR=0.0.0.0:8080
MCP_PUBLIC_URL=https://mcp.example.com
# MCP_CORS_ORIGIN=https://app.example.com
# MCP_DATABASE_URL=postgres://mcpauth@db.internal:5432/mcpauth
`
