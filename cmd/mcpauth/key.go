package main

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth/auth/keyring"
	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/tools"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Signing keys: generate asymmetric ones (ES256, EdDSA, RS256), list those in use, rotate",
		Long: `Asymmetric signing keys. With one, mcpauth signs tokens that anyone can verify
with the public key it publishes at /.well-known/jwks.json, without holding a
secret that could also mint tokens. HS256 with MCP_JWT_SECRET stays the default.`,
	}
	cmd.AddCommand(newKeyGenerateCmd(g), newKeyListCmd(g), newKeyRotateCmd(g))
	return cmd
}

func newKeyListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the keys that sign and verify tokens, with each one's live tokens",
		Long: `List the keys this configuration signs and verifies tokens with (the list_keys
tool shows the same): each key's kid, algorithm and state (signing; verifying:
still accepts the tokens it signed, until its grace ends; retired: its grace
ended or it is no longer configured, so the live tokens it signed are refused),
whether its public key is published in the JWKS,
and how many live tokens (neither revoked nor expired) in the registry it
signed. Secrets and private keys are never printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			l, err := tools.ListKeys(cmd.Context(), a.Keys, a.Registry, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, l)
			}
			_, err = fmt.Fprintln(g.stdout, tools.FormatKeys(l))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKeyRotateCmd(g *globals) *cobra.Command {
	var alg string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate [--alg HS256|ES256|EdDSA|RS256]",
		Short: "Make a new signing key active; the old one verifies until its tokens expire",
		Long: `Make a new signing key active (the rotate_signing_key tool does the same).

Needs registry-kept keys: MCP_KEY_ENCRYPTION_SECRET set, so the registry holds
the keys encrypted and every replica shares them. New tokens are signed with
the new key at once: running servers pick it up within a second (PostgreSQL
tells them at once; SQLite servers reread every second). The keys that signed
until now keep verifying their tokens until the last of those expires (plus
MCP_LEEWAY), at most MCP_KEY_GRACE_MAX; then they are retired and their tokens
refused. mcpauth key list shows every key's state.

Keys from MCP_JWT_SECRET or PEM files are rotated by changing those settings:
the old secret moves to MCP_JWT_SECRET_PREVIOUS, the old PEM file to
MCP_VERIFY_KEY_FILES; they get the same grace.`,
		Example: `  MCP_KEY_ENCRYPTION_SECRET=... mcpauth key rotate
  MCP_KEY_ENCRYPTION_SECRET=... mcpauth key rotate --alg ES256`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			a, err := g.openApp(cmd)
			if err != nil {
				return err
			}
			defer closeApp(a, &err)
			if a.Keyring == nil {
				return keyring.ErrNotManaged
			}
			want := ""
			if alg != "" {
				if want = canonicalAlg(alg); keys.CheckAlg(want) != nil {
					return fmt.Errorf("--alg: %w", keys.CheckAlg(want))
				}
			}
			r, err := a.Keyring.Rotate(cmd.Context(), want, "cli")
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, r)
			}
			_, err = fmt.Fprintln(g.stdout, tools.FormatRotated(r))
			return err
		},
	}
	cmd.Flags().StringVar(&alg, "alg", "", "algorithm of the new key (default: the current key's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newKeyGenerateCmd(g *globals) *cobra.Command {
	var alg, out string
	cmd := &cobra.Command{
		Use:   "generate --alg ES256|EdDSA|RS256 [--out file]",
		Short: "Generate a signing key: a PKCS#8 PEM private key, and print its kid",
		Long: `Generate a signing key for MCP_SIGNING_ALG / MCP_SIGNING_KEY_FILE.

With --out, the PKCS#8 PEM private key is written to that file, readable by its
owner only (mode 0600); an existing file is never overwritten. Without --out the
PEM goes to stdout. Either way the key's kid (its RFC 7638 thumbprint, which
tokens name in their header) and the settings that put it to use are printed
(on stderr when the PEM goes to stdout).

Algorithms: ES256 (ECDSA P-256; small and fast, the usual choice), EdDSA
(Ed25519), RS256 (RSA 3072; for verifiers that know nothing else).

Tokens signed before the switch keep verifying: MCP_JWT_SECRET still checks
HS256 tokens. Keep the key file out of the repository and off shared disks.`,
		Example: `  mcpauth key generate --alg ES256 --out /etc/mcpauth/signing-key.pem
  MCP_SIGNING_ALG=ES256 MCP_SIGNING_KEY_FILE=/etc/mcpauth/signing-key.pem mcpauth serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := canonicalAlg(alg)
			if a == keys.HS256 {
				return errors.New("--alg HS256 signs with MCP_JWT_SECRET, not a key file: make a secret with: mcpauth secret generate")
			}
			k, err := keys.Generate(a)
			if err != nil {
				return fmt.Errorf("--alg: %w", err)
			}
			return writeKey(g, k, out)
		},
	}
	cmd.Flags().StringVar(&alg, "alg", keys.ES256, "algorithm: ES256, EdDSA or RS256")
	cmd.Flags().StringVar(&out, "out", "", "write the private key to this new file (mode 0600) instead of stdout")
	return cmd
}

// writeKey writes k's PEM to out (or stdout) and tells how to use it.
func writeKey(g *globals, k *keys.Key, out string) error {
	info, path := g.stdout, out
	if out == "" {
		pemBytes, err := k.PEM()
		if err != nil {
			return err
		}
		if _, err := g.stdout.Write(pemBytes); err != nil {
			return err
		}
		info, path = g.stderr, "<file with the key above>"
	} else if err := k.WriteNewFile(out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("--out %s: the file exists; mcpauth never overwrites a key (move it away, or choose another name)", out)
		}
		return fmt.Errorf("--out: %w", err)
	}
	_, err := fmt.Fprintf(info, "%s key, kid %s\nUse it with:\n  MCP_SIGNING_ALG=%s MCP_SIGNING_KEY_FILE=%s mcpauth serve\n",
		k.Alg(), k.ID(), k.Alg(), path)
	return err
}
