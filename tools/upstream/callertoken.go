package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// An HTTP upstream whose entry has "callerToken" receives, instead of a
// static credential, a short-lived token mcpauth mints for it alone:
// "Authorization: Bearer <token>" with aud = the upstream
// (Entry.TokenAudience), sub = the caller whose request it is, and the
// caller's scopes (those among CallerToken.Scopes when set). The caller's
// own token never goes to the upstream. Requests no caller made (the
// connection's initialize, list reads, the listening stream, shared
// subscriptions and log levels) carry a token for GatewaySubject with
// CallerToken.Scopes. Tokens are cached per caller token and renewed when
// half their life is gone, so an upstream sees at most one token per
// caller token per half lifetime, and none outlives the caller's own.

// GatewaySubject is the sub of the tokens an upstream receives for the
// gateway's own requests. A client id cannot contain ':', so no caller
// has this subject.
const GatewaySubject = "mcpauth:gateway"

// Delegator mints the tokens callerToken upstreams receive: for subject,
// with scopes, for audience, expiring at exp. *auth.Issuer implements it
// (signing with mcpauth's key, so the upstream can verify the token from
// mcpauth's JWKS). They are not recorded in the registry: they never
// reach mcpauth's callers, and mcpauth itself refuses them (their
// audience is not its own).
type Delegator interface {
	Delegate(ctx context.Context, subject string, scopes []string, audience string, exp time.Time) (string, error)
}

// maxCachedTokens bounds the cached tokens of one upstream; when full,
// expired ones go, and if none had, all of them.
const maxCachedTokens = 4096

// tokenCache holds one upstream's minted tokens by the caller token they
// stand for.
type tokenCache struct {
	mu sync.Mutex
	m  map[tokenKey]cachedToken
}

type tokenKey struct{ iss, sub, jti string }

type cachedToken struct {
	token      string
	renewAfter time.Time
}

// callerTokenKey marks, in a forwarded request's context, the token the
// upstream gets for it.
type callerTokenKey struct{}

var errNoDelegator = errors.New(`"callerToken" needs mcpauth to sign tokens for upstreams, and this server was built without a signer`)

// tokenFor returns the token u gets for a request of caller (nil: the
// gateway's own request).
func (u *Upstream) tokenFor(ctx context.Context, caller *auth.Claims) (string, error) {
	ct := u.entry.CallerToken
	if u.opts.Delegator == nil {
		return "", errNoDelegator
	}
	now := time.Now()
	exp := now.Add(time.Duration(ct.Lifetime))
	subject, scopes := GatewaySubject, []string(ct.Scopes)
	var key tokenKey
	if caller != nil {
		key = tokenKey{caller.Issuer, caller.Subject, caller.ID}
		subject, scopes = caller.Subject, scopesWithin(caller.Scope, ct.Scopes)
		if e, ok := caller.Expires(); ok && e.Before(exp) {
			exp = e
		}
		if !exp.After(now) {
			return "", errors.New("the caller's token has expired")
		}
	}
	u.tokens.mu.Lock()
	c, ok := u.tokens.m[key]
	u.tokens.mu.Unlock()
	if ok && now.Before(c.renewAfter) {
		return c.token, nil
	}
	tok, err := u.opts.Delegator.Delegate(ctx, subject, scopes, u.entry.TokenAudience(), exp)
	if err != nil {
		return "", fmt.Errorf("cannot mint the token upstream %q gets: %w", u.entry.Name, err)
	}
	u.tokens.put(key, cachedToken{token: tok, renewAfter: now.Add(exp.Sub(now) / 2)}, now)
	return tok, nil
}

func (c *tokenCache) put(k tokenKey, t cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[tokenKey]cachedToken{}
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= maxCachedTokens {
		for old, v := range c.m {
			if !now.Before(v.renewAfter) {
				delete(c.m, old)
			}
		}
		if len(c.m) >= maxCachedTokens {
			clear(c.m)
		}
	}
	c.m[k] = t
}

// scopesWithin is the caller's scopes, only those among limit when limit is
// set.
func scopesWithin(caller auth.Scopes, limit auth.Scopes) []string {
	if len(limit) == 0 {
		return append([]string{}, caller...)
	}
	out := []string{}
	for _, s := range caller {
		if limit.Has(s) {
			out = append(out, s)
		}
	}
	return out
}

// withCallerToken marks ctx, a request forwarded for its caller, with the
// token u gets for it (unchanged when u takes no caller token).
func (u *Upstream) withCallerToken(ctx context.Context) (context.Context, error) {
	if u.entry.CallerToken == nil {
		return ctx, nil
	}
	c, _ := auth.ClaimsFrom(ctx)
	tok, err := u.tokenFor(ctx, c)
	if err != nil {
		return nil, err
	}
	return context.WithValue(ctx, callerTokenKey{}, tok), nil
}

// authHeader is the header func of u's HTTP transport: the token of the
// request's caller, else the gateway's own.
func (u *Upstream) authHeader(ctx context.Context) map[string]string {
	tok, _ := ctx.Value(callerTokenKey{}).(string)
	if tok == "" {
		var err error
		if tok, err = u.tokenFor(ctx, nil); err != nil {
			u.log.Warn("upstream request sent without a token", "upstream", u.entry.Name, "err", err)
			return nil
		}
	}
	return map[string]string{"Authorization": "Bearer " + tok}
}
