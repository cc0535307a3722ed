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

func newServeCmd(g *globals) *cobra.Command {
	var (
		addr      string
		stdio     bool
		token     string
		upstreams string
	)
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
  MCP_JWT_SECRET / JWT_SECRET  signing secret (>= 32 bytes; required unless --dev)
  MCP_JWT_SECRET_PREVIOUS      the secret before MCP_JWT_SECRET: still verifies its tokens
                               (never signs), for rotating the secret without an outage
  MCP_SIGNING_ALG              HS256 (default: the secret signs), ES256, EdDSA or RS256
  MCP_SIGNING_KEY_FILE         PEM private key that signs when MCP_SIGNING_ALG is not HS256
                               (make one: mcpauth key generate --alg ES256 --out FILE); its
                               public key is served at /.well-known/jwks.json, and
                               MCP_JWT_SECRET still verifies HS256 tokens
  MCP_VERIFY_KEY_FILES         comma-separated PEM key files (private or public) whose
                               public keys still verify: the previous keys of a rotation
  MCP_ENV=development          dev mode (same as --dev)
  NODE_ENV                     read as MCP_ENV when that is not set (production /
                               development, as the production setup document writes it)
  MCP_ADDR                     listen address (default 127.0.0.1:8080)
  MCP_PUBLIC_URL               external base URL for generated configs (default http://MCP_ADDR)
  MCP_BASE_PATH                serve every endpoint under this path ("/v1": /v1/sse, /v1/mcp),
                               as the operators' documents' URLs have it
  MCP_AUTH_ENABLED             false disables auth (dev mode and loopback only)
  MCP_TOKEN_EXPIRY             default lifetime of tokens from the HTTP token API and
                               issue_token (default 24h; "token issue" defaults to 30d)
  MCP_MAX_TOKEN_LIFETIME       longest lifetime any token may get (default 365d)
  MCP_ALLOW_NEVER_EXPIRING     allow "never" (default false)
  MCP_ALLOWED_CLIENTS          comma-separated client ids that may get tokens
  MCP_ISSUER                   iss claim (default mcpauth)
  MCP_AUDIENCE                 aud claim to write and require (optional)
  MCP_LEGACY_ISSUERS           comma-separated iss values of tokens minted before mcpauth
                               (same secret) that are accepted; "token import" records them
  MCP_LEEWAY                   clock skew tolerated on exp/nbf (default 30s)
  MCP_DATABASE_URL             SQLite file (default ./mcpauth.db) or postgres:// URL
  MCP_REGISTRY_BUSY_TIMEOUT    longest wait of a SQLite write for another writer's lock;
                               then the mint is refused: "registry busy" (default 5s)
  MCP_REVOCATION_RESYNC        full revocation reload interval (default 1s)
  MCP_REVOCATION_MAX_STALENESS longest a replica serves on a revocation set it could not
                               resync (registry out of reach); then tokens get 503 and
                               /health "degraded" (default: 5s or 3 resyncs, the larger)
  MCP_REVOCATION_FAIL_OPEN     true keeps serving on a stale set instead (logged loudly)
  MCP_LAST_SEEN_FLUSH          last-seen batch write interval (default 10s)
  MCP_STATELESS                Streamable HTTP without Mcp-Session-Id: any replica
                               can answer (default false)
  MCP_LOG_LEVEL                debug, info, warn, error (default info)
  MCP_TOKEN                    identity for --stdio (default: local admin)
  API_KEY                      enables POST /api/v1/mcp/auth/token (X-API-Key); >= 32 bytes
  MCP_CORS_ORIGIN              comma-separated browser origins allowed (others get 403)
  MCP_SCOPES                   extra scopes advertised in resource metadata
  MCP_AUTH_FAIL_BURST          failed auths per address before 429 (default 20)
  MCP_AUTH_FAIL_REFILL         one more attempt allowed per interval (default 3s)
  MCP_TRUSTED_PROXIES          reverse proxies (IPs, CIDRs) whose X-Forwarded-For
                               names the client for throttling and audit
  MCP_MAX_STREAMS_PER_CLIENT   open SSE/GET streams and WebSocket connections per
                               client id (default 32)
  MCP_MAX_SESSIONS_PER_CLIENT  Streamable HTTP sessions (initialize) per client id
                               (default 64)
  MCP_SSE_WRITE_TIMEOUT        bound on each write to an event stream (SSE, GET /mcp)
                               or WebSocket and on a POST /message's wait for its
                               stream; a stream whose client stopped reading is
                               dropped (default 15s)
  MCP_OAUTH_ENABLED            serve the OAuth authorization server (default true)
  MCP_OAUTH_ACCESS_TTL         OAuth access token lifetime (default 1h)
  MCP_OAUTH_REFRESH_TTL        OAuth refresh token lifetime (default 720h)
  MCP_OAUTH_DEV_LOOPBACK_METADATA
                               dev mode only: fetch client metadata documents from
                               loopback over http (default false)
  MCP_ENROLLMENT_TTL           default enrollment code lifetime (default 15m)
  MCP_OAUTH_PRUNE_INTERVAL     how often expired OAuth state is deleted (default 1m)
  MCP_OAUTH_PENDING_PER_ADDRESS
                               pending sign-ins (GET /authorize) per address, an
                               IPv6 /64 counting as one (default 10)
  MCP_OAUTH_PENDING_PER_CLIENT pending sign-ins per OAuth client id (default 50)
  MCP_OAUTH_PENDING_MAX        pending sign-ins in total (default 1000)
  MCP_OAUTH_AUTHORIZE_BURST    sign-ins one address may start at once (default 10)
  MCP_OAUTH_AUTHORIZE_REFILL   then one more per interval (default 6s)
  MCP_LOG_FORMAT               json (default; audit records) or text (default in dev mode)
  MCP_UPSTREAMS                file naming MCP servers to relay (gateway mode), in the
                               {"mcpServers": {…}} format of MCP clients' configs, plus
                               an optional "policy" (same as --upstreams)
  MCP_POLICY                   policy file of its own: which scopes each tool, prompt and
                               resource needs; reloaded on SIGHUP
  MCP_UPSTREAM_TIMEOUT         longest wait for an upstream's answer (default 60s)
  MCP_TRUSTED_ISSUERS          file naming identity providers whose access tokens are
                               accepted besides mcpauth's own: {"providers": [{"name":
                               "corp", "issuer": "https://login.example.com", …}]};
                               callers are "corp:<sub>"; see README "Trusted identity
                               providers"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			cfg, logger, err := g.load(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("addr") {
				cfg.Addr = addr
			}
			if cmd.Flags().Changed("token") {
				cfg.Token = token
			}
			if cmd.Flags().Changed("upstreams") {
				cfg.Upstreams = upstreams
			}
			var ln net.Listener
			if !stdio {
				if !cfg.AuthEnabled && !transport.IsLoopback(cfg.Addr) {
					return fmt.Errorf("auth is disabled (MCP_AUTH_ENABLED=false), so mcpauth listens only on loopback; %q is not a loopback address", cfg.Addr)
				}
				if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
					return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
				}
				defer ln.Close()
				if cfg.PublicURL == "" { // e.g. --addr 127.0.0.1:0: name the real port
					cfg.PublicURL = "http://" + ln.Addr().String()
				}
			}
			a, err := newApp(cmd.Context(), cfg, logger, func(lc *mcpauth.Config, set settings) error {
				lc.Metrics = g.metrics
				withUpstreams(cfg, set, lc)
				return nil
			})
			if err != nil {
				return err
			}
			defer closeApp(a, &err) // every stdio upstream stops with the server

			// Background work lives as long as the command: revocation
			// sync (other processes' and replicas' revocations), batched
			// last-seen writes, and policy reloads on SIGHUP.
			bg, stopBG := context.WithCancel(cmd.Context())
			var wg sync.WaitGroup
			defer func() { stopBG(); wg.Wait() }()
			wg.Add(2)
			go func() { defer wg.Done(); a.Run(bg) }()
			go func() { defer wg.Done(); reloadPolicyOnHUP(bg, cfg, a.Server, logger) }()

			if stdio {
				identity := localAdmin()
				if cfg.Token != "" {
					c, err := a.Verifier.Verify(cfg.Token)
					if err != nil {
						return fmt.Errorf("MCP_TOKEN: %s", auth.Describe(err))
					}
					identity = c
				}
				// A session acting as a token ends with it (revoked or
				// expired), like every HTTP stream.
				sctx, stop := transport.UntilTokenEnds(cmd.Context(), identity, a.Revoked, 0)
				defer stop()
				logger.Info("serving MCP over stdio", "client_id", identity.Subject, "version", version)
				err := a.ServeStdio(sctx, identity, g.stdin, g.stdout, g.stderr)
				if cause := context.Cause(sctx); cmd.Context().Err() == nil && (errors.Is(cause, auth.ErrTokenRevoked) || errors.Is(cause, auth.ErrTokenExpired)) {
					return fmt.Errorf("stdio session ended: MCP_TOKEN: %s", auth.Describe(cause))
				}
				return err
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
			g.sessions = a.HTTP.OpenSessions
			return transport.Serve(cmd.Context(), ln, a.HTTP, logger)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "listen address (MCP_ADDR)")
	cmd.Flags().BoolVar(&stdio, "stdio", false, "serve over stdin/stdout instead of HTTP")
	cmd.Flags().StringVar(&upstreams, "upstreams", "", "relay the MCP servers named in this file (mcpServers format) behind mcpauth's auth (MCP_UPSTREAMS)")
	cmd.Flags().StringVar(&token, "token", "", "with --stdio: act as this token's identity instead of local admin (MCP_TOKEN)")
	return cmd
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
