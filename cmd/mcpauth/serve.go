package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/transport"
)

// serveFlags are serve's command-line flags; each but --stdio overrides
// its environment variable when given.
type serveFlags struct {
	addr, token, upstreams string
	stdio                  bool
}

func newServeCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the MCP server (HTTP: /mcp, /sse + /message, /health; or --stdio)",
		Long: `Run the MCP server.

Over HTTP it serves, on one port: Streamable HTTP at /mcp, legacy SSE at
GET /sse + POST /message, and GET /health. Every MCP endpoint requires
"Authorization: Bearer <jwt>".

With --stdio it serves the same tools over stdin/stdout as a trusted local
admin, or as the identity of --token / MCP_TOKEN. Logs go to stderr.

Environment:
` + envHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.serve(cmd, g) },
	}
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address (MCP_ADDR)")
	cmd.Flags().BoolVar(&f.stdio, "stdio", false, "serve over stdin/stdout instead of HTTP")
	cmd.Flags().StringVar(&f.upstreams, "upstreams", "", "relay the MCP servers named in this file (mcpServers format) behind mcpauth's auth (MCP_UPSTREAMS)")
	cmd.Flags().StringVar(&f.token, "token", "", "with --stdio: act as this token's identity instead of local admin (MCP_TOKEN)")
	return cmd
}

// serve loads the configuration, assembles the server and serves it over
// HTTP or stdio until the command's context ends.
func (f serveFlags) serve(cmd *cobra.Command, g *globals) (err error) {
	cfg, logger, err := g.load(cmd)
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("addr") {
		cfg.Addr = f.addr
	}
	if cmd.Flags().Changed("token") {
		cfg.Token = f.token
	}
	if cmd.Flags().Changed("upstreams") {
		cfg.Upstreams = f.upstreams
	}
	var ln net.Listener
	if !f.stdio {
		if ln, err = listen(&cfg); err != nil {
			return err
		}
		defer ln.Close()
	}
	var pre *early
	a, err := newApp(cmd.Context(), cfg, logger, func(lc *mcpauth.Config, set settings) (err error) {
		lc.Metrics = g.metrics
		withUpstreams(cfg, set, lc)
		if ln != nil && needsEarly(lc) {
			pre, err = serveEarly(ln, lc, logger)
		}
		return err
	})
	if pre != nil {
		// From here on the real server answers (or, on error, nobody).
		stopCtx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		ln = pre.handOver(stopCtx)
		cancel()
		defer ln.Close()
	}
	if err != nil {
		return err
	}
	defer closeApp(a, &err) // every stdio upstream stops with the server

	// Background work lives as long as the command: revocation sync
	// (other processes' and replicas' revocations), batched last-seen
	// writes, and policy reloads on SIGHUP.
	bg, stopBG := context.WithCancel(cmd.Context())
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(bg) }()
	go func() { defer wg.Done(); reloadPolicyOnHUP(bg, cfg, a.Server, logger) }()

	if f.stdio {
		return serveStdio(cmd.Context(), a, g, logger)
	}
	if cfg.RevocationFailOpen {
		logger.Warn("MCP_REVOCATION_FAIL_OPEN: a replica cut off from the registry keeps accepting tokens revoked elsewhere until it reconnects")
	}
	if !cfg.AuthEnabled {
		logger.Warn("AUTH IS DISABLED (dev mode): every request acts as an admin; never expose this server")
	}
	logger.Info("mcpauth listening", "addr", ln.Addr().String(), "public_url", cfg.publicURL(),
		"streamable_http", cfg.publicURL()+"/mcp", "sse", cfg.publicURL()+"/sse",
		"websocket", strings.Replace(cfg.publicURL(), "http", "ws", 1)+"/ws", "version", version)
	firstTokenHint(cmd.Context(), a, cfg, logger)
	serveDebugPprof(logger)
	g.sessions = a.HTTP.OpenSessions
	return transport.Serve(cmd.Context(), ln, a.HTTP, logger)
}

// listen opens the HTTP listener (loopback only when auth is off) and,
// when no public URL is set, names the real address in cfg (--addr
// 127.0.0.1:0 picks a port).
func listen(cfg *Config) (net.Listener, error) {
	if !cfg.AuthEnabled && !transport.IsLoopback(cfg.Addr) {
		return nil, fmt.Errorf("auth is disabled (MCP_AUTH_ENABLED=false), so mcpauth listens only on loopback; %q is not a loopback address", cfg.Addr)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	return ln, nil
}

// serveStdio serves MCP over the command's stdin and stdout as the local
// admin, or as MCP_TOKEN's identity until that token is revoked or
// expires.
func serveStdio(ctx context.Context, a *app, g *globals, logger *slog.Logger) error {
	identity := localAdmin()
	if a.cfg.Token != "" {
		c, err := a.Verifier.Verify(a.cfg.Token)
		if err != nil {
			return fmt.Errorf("MCP_TOKEN: %s", auth.Message(err))
		}
		identity = c
	}
	// A session acting as a token ends with it (revoked or expired), like
	// every HTTP stream.
	sctx, stop := transport.UntilTokenEnds(ctx, identity, a.Revoked, 0)
	defer stop()
	logger.Info("serving MCP over stdio", "client_id", identity.Subject, "version", version)
	err := a.ServeStdio(sctx, identity, g.stdin, g.stdout, g.stderr)
	if cause := context.Cause(sctx); ctx.Err() == nil && (errors.Is(cause, auth.ErrTokenRevoked) || errors.Is(cause, auth.ErrTokenExpired)) {
		return fmt.Errorf("stdio session ended: MCP_TOKEN: %s", auth.Message(cause))
	}
	return err
}

func revocationMode(cfg Config) string {
	if cfg.isPostgres() {
		return "postgres listen/notify + resync every " + cfg.RevocationResync.String()
	}
	return "sqlite resync every " + cfg.RevocationResync.String()
}

// firstTokenHint tells an operator whose registry holds no token yet how
// to mint the first one.
func firstTokenHint(ctx context.Context, a *app, cfg Config, logger *slog.Logger) {
	clients, err := a.Registry.ListClients(ctx, time.Now())
	if err != nil || len(clients) > 0 || !cfg.AuthEnabled {
		return
	}
	cmdline := "mcpauth token issue <your-name> 30d --scope admin"
	if cfg.Dev() {
		cmdline += " --dev"
	}
	logger.Info("no tokens yet: mint the first admin token with this command, then connect with Authorization: Bearer <token>",
		"command", cmdline, "mcp_url", cfg.publicURL()+"/mcp")
}
