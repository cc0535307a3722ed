package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/idp"
	"github.com/mcpauth/mcpauth/auth/policy"
)

// app is the assembled server (mcpauth.New) with the configuration every
// command built it from.
type app struct {
	*mcpauth.Server
	cfg      Config
	settings settings
	log      *slog.Logger
}

// newApp checks the configuration and assembles the server through
// mcpauth.New, the one place it is wired; more adjusts the library
// configuration first, given the checked settings (serve adds the
// upstreams and metrics).
func newApp(ctx context.Context, cfg Config, logger *slog.Logger, more ...func(*mcpauth.Config, settings) error) (*app, error) {
	lc, set, err := cfg.library(logger)
	if err != nil {
		return nil, err
	}
	for _, m := range more {
		if err := m(&lc, set); err != nil {
			return nil, err
		}
	}
	srv, err := mcpauth.New(ctx, lc)
	if err != nil {
		return nil, err
	}
	return &app{Server: srv, cfg: cfg, settings: set, log: logger}, nil
}

// closeApp closes a and joins a failure to close into *err: a command
// whose registry did not close cleanly does not report success.
func closeApp(a *app, err *error) {
	if cerr := a.Close(); cerr != nil {
		*err = errors.Join(*err, cerr)
	}
}

// library turns the environment's settings into the library's Config.
func (c Config) library(logger *slog.Logger) (mcpauth.Config, settings, error) {
	set, err := c.settings()
	if err != nil {
		return mcpauth.Config{}, settings{}, err
	}
	if !c.AuthEnabled && !c.Dev() {
		return mcpauth.Config{}, settings{}, fmt.Errorf("MCP_AUTH_ENABLED=false is allowed only in dev mode (--dev or MCP_ENV=development)")
	}
	secret, err := c.secret(logger)
	if err != nil {
		return mcpauth.Config{}, settings{}, err
	}
	sg, err := c.signing(secret)
	if err != nil {
		return mcpauth.Config{}, settings{}, err
	}
	// Every command reads the policy (its scopes may be minted); only
	// serve starts the upstreams (withUpstreams).
	var pc policy.Config
	set.upstreams, pc, err = gatewayFiles(c)
	if err != nil {
		return mcpauth.Config{}, settings{}, err
	}
	url, err := c.databaseURL()
	if err != nil {
		return mcpauth.Config{}, settings{}, err
	}
	trusted, err := c.trustedIssuers()
	if err != nil {
		return mcpauth.Config{}, settings{}, err
	}
	return mcpauth.Config{
		Secret: secret, PreviousSecret: sg.previousSecret, SigningKey: sg.key, VerifyKeys: sg.verify,
		KeyEncryptionSecret: []byte(c.KeyEncryptionSecret), KeyAlg: canonicalAlg(c.SigningAlg), KeyGraceMax: c.KeyGraceMax, Issuer: c.Issuer, Audience: c.Audience, LegacyIssuers: c.LegacyIssuers, PublicURL: c.publicURL(), BasePath: c.BasePath, DatabaseURL: url,
		RegistryBusyTimeout: c.RegistryBusyTimeout,
		DefaultExpiry:       set.defaultExpiry, MaxLifetime: set.maxLifetime, AllowNever: c.AllowNever,
		AllowedClients: c.AllowedClients, Scopes: c.Scopes, Leeway: c.Leeway,
		RevocationResync: c.RevocationResync, RevocationMaxStaleness: c.revocationMaxStaleness(), LastSeenFlush: c.LastSeenFlush,
		AuthDisabled: !c.AuthEnabled, DevIdentity: devIdentity(), ReservedSubjects: []string{localAdmin().Subject},
		OAuth: mcpauth.OAuthConfig{
			Serve: c.OAuthEnabled, AccessTTL: c.OAuthAccessTTL, RefreshTTL: c.OAuthRefreshTTL, EnrollmentTTL: c.EnrollmentTTL,
			// Loopback redirects for web clients only in dev mode.
			AllowLoopbackRedirects: c.Dev(), AllowLoopbackMetadata: c.OAuthLoopbackMetadata,
			Pending: c.oauthPending(), MaxClients: c.OAuthClientsMax, PruneInterval: c.OAuthPruneInterval,
		},
		APIKey: c.APIKey, CORSOrigins: c.corsOrigins(), TrustedProxies: set.trustedProxies,
		AuthFailBurst: c.AuthFailBurst, AuthFailRefill: c.AuthFailRefill,
		MaxStreamsPerClient: c.MaxStreamsPerClient, MaxSessionsPerClient: c.MaxSessionsPerClient,
		SSEWriteTimeout: c.SSEWriteTimeout, Stateless: c.Stateless,
		Policy: pc, DefaultDeny: !c.Dev(), Version: version, Logger: logger, RevocationMode: revocationMode(c),
		// http to a loopback provider only in dev mode.
		TrustedIssuers: trusted, TrustedIssuerOptions: idp.Options{AllowLoopbackHTTP: c.Dev()},
	}, set, nil
}

// trustedIssuers reads MCP_TRUSTED_ISSUERS' file; none when unset.
func (c Config) trustedIssuers() ([]idp.Provider, error) {
	if c.TrustedIssuers == "" {
		return nil, nil
	}
	ps, err := idp.Load(c.TrustedIssuers, c.Dev())
	if err != nil {
		return nil, fmt.Errorf("MCP_TRUSTED_ISSUERS: %w", err)
	}
	return ps, nil
}

// localAdmin is the identity of a trusted local operator (stdio, CLI).
func localAdmin() *auth.Claims {
	c := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	c.Subject = "local-admin"
	c.ID = "local"
	return c
}

// devIdentity is used for every request when auth is disabled in dev mode.
func devIdentity() *auth.Claims {
	c := localAdmin()
	c.Subject = "dev-anonymous"
	return c
}
