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
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Print a fresh signing secret (32 random bytes as hex)",
		Long: `Print a fresh signing secret: 32 random bytes as 64 hex characters.
Put it in MCP_JWT_SECRET (environment or .env file), never in the repository.
Rotating the secret invalidates every token signed with the old one.`,
		Example: `  echo "MCP_JWT_SECRET=$(mcpauth secret generate)" >> .env`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := auth.GenerateSecret()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(g.stdout, s)
			return err
		},
	})
	return cmd
}
