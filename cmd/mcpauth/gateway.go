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

	"github.com/mcpauth/mcpauth"
	"github.com/mcpauth/mcpauth/auth/policy"
	"github.com/mcpauth/mcpauth/tools/upstream"
)

// secretEnv are the variables a stdio upstream never inherits.
var secretEnv = []string{"MCP_JWT_SECRET", "JWT_SECRET", "MCP_JWT_SECRET_PREVIOUS", "MCP_SIGNING_KEY_FILE", "MCP_KEY_ENCRYPTION_SECRET", "API_KEY", "MCP_TOKEN", "MCP_DATABASE_URL"}

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

// withUpstreams adds the upstreams read with the settings to the library
// configuration (serve only: other commands never start children).
func withUpstreams(cfg Config, set settings, lc *mcpauth.Config) {
	lc.Upstreams = set.upstreams
	lc.UpstreamOptions = upstream.Options{CallTimeout: cfg.UpstreamTimeout, Env: childEnv(),
		MaxInFlightPerClient: cfg.MaxInFlightPerClient, MaxSubscriptionsPerSession: cfg.MaxSubscriptionsPerSession}
}

// gatewayFiles reads, once, the upstreams file and the operator's
// policy: MCP_POLICY's file, or the upstreams file's "policy", checked by
// compiling it. Neither: no rules.
func gatewayFiles(cfg Config) ([]upstream.Entry, policy.Config, error) {
	f, err := loadUpstreams(cfg)
	if err != nil {
		return nil, policy.Config{}, err
	}
	pc, err := policyFrom(cfg, f)
	return f.Servers, pc, err
}

// policyConfig reads the policy anew (a SIGHUP reload), upstreams file
// included.
func policyConfig(cfg Config) (policy.Config, error) {
	_, pc, err := gatewayFiles(cfg)
	return pc, err
}

// policyFrom finds the policy given f, the upstreams file, and compiles it
// to check it.
func policyFrom(cfg Config, f upstream.File) (policy.Config, error) {
	raw, where, err := policySource(cfg, f)
	if err != nil || len(raw) == 0 {
		return policy.Config{}, err
	}
	pc, err := policy.Parse(raw)
	if err == nil {
		_, err = policy.New(pc, policy.Need{})
	}
	if err != nil {
		return policy.Config{}, fmt.Errorf("%s: %w", where, err)
	}
	return pc, nil
}

func policySource(cfg Config, f upstream.File) (json.RawMessage, string, error) {
	if cfg.PolicyFile == "" {
		return f.Policy, "MCP_UPSTREAMS " + cfg.Upstreams, nil
	}
	if f.Policy != nil {
		return nil, "", errors.New(`both MCP_POLICY and the upstreams file's "policy" are set; keep one`)
	}
	b, err := os.ReadFile(cfg.PolicyFile)
	if err != nil {
		return nil, "", fmt.Errorf("MCP_POLICY: %w", err)
	}
	return b, "MCP_POLICY " + cfg.PolicyFile, nil
}

// reloadPolicyOnHUP re-reads the policy whenever the process gets SIGHUP.
// A policy that does not compile leaves the old one in force and is
// logged with its reason.
func reloadPolicyOnHUP(ctx context.Context, cfg Config, srv *mcpauth.Server, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		pc, err := policyConfig(cfg)
		if err == nil {
			err = srv.ReloadPolicy(pc)
		}
		if err != nil {
			logger.Error("policy reload refused; the previous policy stays in force", "err", err)
			continue
		}
		logger.Info("policy reloaded")
	}
}
