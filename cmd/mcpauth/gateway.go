package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/tools"
	"github.com/mcpauth/mcpauth/tools/upstream"
)

// secretEnv are the variables a stdio upstream never inherits.
var secretEnv = []string{"MCP_JWT_SECRET", "JWT_SECRET", "API_KEY", "MCP_TOKEN", "MCP_DATABASE_URL"}

// childEnv is mcpauth's environment minus its secrets: what stdio
// upstreams start from (their entry's env adds to it).
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !containsFold(secretEnv, k) {
			out = append(out, kv)
		}
	}
	return out
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// loadUpstreams reads the upstreams file named by the configuration.
func loadUpstreams(cfg Config) (upstream.File, error) {
	if cfg.Upstreams == "" {
		return upstream.File{}, nil
	}
	return upstream.Load(cfg.Upstreams, os.LookupEnv)
}

// startGateway connects every upstream; nil when there are none.
func startGateway(ctx context.Context, cfg Config, f upstream.File, ts *tools.Toolset, logger *slog.Logger) (*upstream.Gateway, error) {
	if len(f.Servers) == 0 {
		return nil, nil
	}
	gw := upstream.New(f.Servers, upstream.Options{
		Logger: logger, Version: version, CallTimeout: cfg.UpstreamTimeout, Env: childEnv(), Access: ts,
	})
	if err := gw.Start(ctx, ts.Names()); err != nil {
		return nil, fmt.Errorf("MCP_UPSTREAMS %s: %w", cfg.Upstreams, err)
	}
	return gw, nil
}

// policySource reads the operator's policy document: MCP_POLICY's file, or
// the upstreams file's "policy" (read anew on every reload). Neither: nil.
func policySource(cfg Config) (json.RawMessage, string, error) {
	if cfg.PolicyFile != "" {
		b, err := os.ReadFile(cfg.PolicyFile)
		if err != nil {
			return nil, "", fmt.Errorf("MCP_POLICY: %w", err)
		}
		return b, "MCP_POLICY " + cfg.PolicyFile, nil
	}
	f, err := loadUpstreams(cfg)
	if err != nil {
		return nil, "", err
	}
	return f.Policy, "MCP_UPSTREAMS " + cfg.Upstreams, nil
}

// buildPolicy compiles the operator's policy over the toolset's built-in
// rules. What no rule names is denied in production and allowed to any
// authenticated caller in dev mode, unless the policy sets "default".
func buildPolicy(cfg Config, ts *tools.Toolset) (*policy.Policy, error) {
	raw, where, err := policySource(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.PolicyFile != "" && cfg.Upstreams != "" {
		if f, err := loadUpstreams(cfg); err == nil && f.Policy != nil {
			return nil, errors.New(`both MCP_POLICY and the upstreams file's "policy" are set; keep one`)
		}
	}
	var pc policy.Config
	if len(raw) > 0 {
		if pc, err = policy.Parse(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	def := policy.Need{Deny: !cfg.Dev()}
	p, err := policy.New(pc, def, ts.Builtins()...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return p, nil
}

// reloadPolicyOnHUP replaces the policy in force whenever the process gets
// SIGHUP. A policy that does not compile leaves the old one in force and
// is logged with its reason.
func reloadPolicyOnHUP(ctx context.Context, cfg Config, ts *tools.Toolset, h *policy.Holder, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		p, err := buildPolicy(cfg, ts)
		if err != nil {
			logger.Error("policy reload refused; the previous policy stays in force", "err", err)
			continue
		}
		h.Store(p)
		logger.Info("policy reloaded", "default", p.Default().String())
	}
}
