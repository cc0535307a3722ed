// Command mcpauth is an MCP server that puts JWT authorization in front of
// its transports and exposes token administration as MCP tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth/transport"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit code and the reason shown for it.
type exitError struct {
	code   int
	reason string
}

func (e exitError) Error() string { return e.reason }

// globals are the flags every command shares.
type globals struct {
	// metrics counts audit records (serve sets the open-sessions source).
	metrics *transport.Metrics
	// sessions reports open sessions to the metrics once serving.
	sessions func() int
	envFile  string
	dev      bool
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "mcpauth",
		Short: "JWT-protected MCP server with token administration tools",
		Long: `mcpauth is an MCP (Model Context Protocol) server that requires a JWT Bearer
token on every transport (stdio, legacy SSE, Streamable HTTP) and lets admins
mint, inspect, list and revoke tokens from inside an MCP client or from this
command line. In gateway mode (serve --upstreams) it also guards the MCP
servers you already run, deciding per tool which scopes a caller needs.

MCP tools: whoami (anyone); issue_token, decode_token, list_clients,
list_tokens, revoke_token, create_enrollment, list_pending_authorizations,
approve_authorization, deny_authorization, list_upstreams and list_keys (admin).

Configuration comes from the environment (and a .env file in the current
directory, if present). The essentials:
  MCP_JWT_SECRET   signing secret, at least 32 bytes (also read as JWT_SECRET)
  MCP_SIGNING_ALG  ES256, EdDSA or RS256 to sign with MCP_SIGNING_KEY_FILE instead
                   (make one with "mcpauth key generate"); public keys at
                   /.well-known/jwks.json
  MCP_ADDR         listen address (default 127.0.0.1:8080)
  MCP_PUBLIC_URL   external base URL used in generated client configs
  MCP_DATABASE_URL registry file (default ./mcpauth.db)
Run "mcpauth serve --help" for the full list.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.envFile, "env-file", ".env", "read environment variables from this file if it exists (set variables win)")
	root.PersistentFlags().BoolVar(&g.dev, "dev", false, "development mode: generate and keep a dev secret if none is set (same as MCP_ENV=development)")
	root.AddCommand(newServeCmd(g), newTokenCmd(g), newSecretCmd(g), newKeyCmd(g), newHealthCmd(g), newEnrollmentCmd(g), newVersionCmd(g))
	return root
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mcpauth's version and the Go version it was built with",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(g.stdout, "mcpauth %s (%s)\n", version, runtime.Version())
			return err
		},
	}
}

// openApp loads the configuration and builds the app for a command that
// needs the registry and keys; the caller closes it.
func (g *globals) openApp(cmd *cobra.Command) (*app, error) {
	cfg, logger, err := g.load(cmd)
	if err != nil {
		return nil, err
	}
	return newApp(cmd.Context(), cfg, logger)
}

// load reads the configuration once for a command.
func (g *globals) load(cmd *cobra.Command) (Config, *slog.Logger, error) {
	explicit := cmd.Flags().Changed("env-file")
	cfg, err := loadConfig(g.envFile, explicit)
	if err != nil {
		return Config{}, nil, err
	}
	if g.dev {
		cfg.Env = "development"
	}
	logger, err := newLogger(g.stderr, cfg.LogLevel, cfg.LogFormat, cfg.Dev())
	if err != nil {
		return Config{}, nil, err
	}
	g.metrics = transport.NewMetrics(func() int {
		if g.sessions == nil {
			return 0
		}
		return g.sessions()
	})
	logger = slog.New(g.metrics.CountingHandler(logger.Handler()))
	return cfg, logger, nil
}
