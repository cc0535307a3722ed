package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/oauth"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/auth/revocation"
	"github.com/mcpauth/mcpauth/tools"
)

// app holds the pieces every command builds from one Config.
type app struct {
	cfg      Config
	policy   policy
	reg      registry.Store
	revoked  *auth.RevocationSet
	revoker  *revocation.Service
	issuer   *auth.Issuer
	verifier *auth.Verifier
	oauth    *oauth.Server
	log      *slog.Logger
}

// newApp validates the configuration, opens the registry and loads the
// revocation set from it.
func newApp(ctx context.Context, cfg Config, logger *slog.Logger) (*app, error) {
	pol, err := cfg.policy()
	if err != nil {
		return nil, err
	}
	if !cfg.AuthEnabled && !cfg.Dev() {
		return nil, fmt.Errorf("MCP_AUTH_ENABLED=false is allowed only in dev mode (--dev or MCP_ENV=development)")
	}
	secret, err := cfg.secret(logger)
	if err != nil {
		return nil, err
	}
	url, err := cfg.databaseURL()
	if err != nil {
		return nil, err
	}
	reg, err := registry.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, policy: pol, reg: reg, revoked: auth.NewRevocationSet(), log: logger}
	a.revoker = revocation.New(revocation.Config{
		Store: reg, Set: a.revoked, Resync: cfg.RevocationResync, Leeway: cfg.Leeway, Logger: logger,
		// Revoking an OAuth client's access token also kills its refresh
		// tokens (a.oauth is set below, before any request is served).
		OnRevoke: func(ctx context.Context, toks []registry.Token) {
			if a.oauth != nil {
				a.oauth.RevokeRefresh(ctx, toks)
			}
		},
	})
	if err := a.revoker.Sync(ctx); err != nil {
		reg.Close()
		return nil, err
	}
	a.issuer, err = auth.NewIssuer(auth.IssuerConfig{
		Secret:         secret,
		Issuer:         cfg.Issuer,
		Audience:       cfg.Audience,
		MaxLifetime:    pol.maxLifetime,
		AllowNever:     cfg.AllowNever,
		AllowedClients: cfg.AllowedClients,
		KnownScopes:    cfg.Scopes,
	}, reg)
	if err != nil {
		reg.Close()
		return nil, err
	}
	a.verifier, err = auth.NewVerifier(auth.VerifierConfig{
		Secret:         secret,
		Issuer:         cfg.Issuer,
		Audience:       cfg.Audience,
		Leeway:         cfg.Leeway,
		AllowNever:     cfg.AllowNever,
		Revoked:        a.revoked,
		AllowedClients: cfg.AllowedClients,
		Resources:      cfg.resources(),
	})
	if err != nil {
		reg.Close()
		return nil, err
	}
	a.oauth, err = oauth.New(oauth.Config{
		Issuer:          cfg.publicURL(),
		Resources:       cfg.resources(),
		Store:           reg,
		Minter:          a.issuer,
		Revoker:         a.revoker,
		Inspector:       a.verifier,
		ScopesSupported: auth.NormalizeScopes(append([]string{auth.ScopeAdmin}, cfg.Scopes...)),
		AccessTTL:       cfg.OAuthAccessTTL,
		RefreshTTL:      cfg.OAuthRefreshTTL,
		EnrollmentTTL:   cfg.EnrollmentTTL,
		// Loopback redirects for web clients only in dev mode.
		AllowLoopbackRedirects: cfg.Dev(),
		AllowLoopbackMetadata:  cfg.OAuthLoopbackMetadata,
		Pending:                cfg.oauthPending(),
		Logger:                 logger,
	})
	if err != nil {
		reg.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) Close() error { return a.reg.Close() }

func (a *app) toolset() *tools.Toolset {
	return tools.New(tools.Deps{
		Minter:        a.issuer,
		Inspector:     a.verifier,
		Clients:       a.reg,
		Revoker:       a.revoker,
		Tokens:        a.reg,
		OAuth:         a.oauth,
		DefaultExpiry: a.policy.defaultExpiry,
		PublicURL:     a.cfg.publicURL(),
		Issuer:        a.cfg.Issuer,
		Logger:        a.log,
	})
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
