package auth

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/auth/keys"
	"github.com/mcpauth/mcpauth/internal/tokentest"
)

func mustSet(t *testing.T, active *keys.Key, verify ...*keys.Key) *keys.Set {
	t.Helper()
	s, err := keys.NewSet(active, verify...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mintWithRing(t *testing.T, ring *keys.Ring) (string, string) {
	t.Helper()
	iss, err := NewIssuer(IssuerConfig{Ring: ring, Issuer: tokentest.Issuer, MaxLifetime: time.Hour, Now: fixedClock(tokentest.T0)}, &fakeRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	admin := &Claims{Scope: Scopes{ScopeAdmin}}
	admin.Subject = "root"
	it, err := iss.Issue(t.Context(), IssueRequest{ClientID: "c", Expiry: Expiry{Duration: time.Hour}, Caller: admin})
	if err != nil {
		t.Fatal(err)
	}
	return it.Token, it.KeyID
}

// Rule: a rotation swaps the ring and both the issuer and the verifier
// follow it at once; a retired key's tokens are refused naming the
// retirement, even those verified (and remembered) before it.
func TestIssuerAndVerifierFollowTheRing(t *testing.T) {
	old, next := hmacKey(t, tokentest.Secret), asymKey(t, keys.ES256)
	ring := keys.NewRing(mustSet(t, old))
	v := newTestVerifier(t, func(c *VerifierConfig) { c.Ring = ring })

	tokOld, kid := mintWithRing(t, ring)
	if kid != old.ID() {
		t.Fatalf("minted with %s, want the active %s", kid, old.ID())
	}
	if _, err := v.Verify(tokOld); err != nil {
		t.Fatalf("old key's token before the rotation: %v", err)
	}

	// Rotation: next signs, old still verifies (the grace).
	ring.Store(mustSet(t, next, old))
	tokNext, kid := mintWithRing(t, ring)
	if kid != next.ID() {
		t.Fatalf("after the rotation minted with %s, want %s", kid, next.ID())
	}
	for name, tok := range map[string]string{"old": tokOld, "new": tokNext} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s key's token during the grace: %v", name, err)
		}
	}

	// Retirement: old leaves the set; its token was remembered by the
	// cache, and is refused all the same.
	retiredAt := tokentest.T0.Add(-time.Minute)
	ring.Store(mustSet(t, next, old).WithLifecycle(nil, map[string]time.Time{old.ID(): retiredAt}))
	_, err := v.Verify(tokOld)
	if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(Message(err), "retired key") || !strings.Contains(Message(err), old.ID()) {
		t.Errorf("retired key's token: %v (%q), want invalid naming the retired key", err, Message(err))
	}
	if _, err := v.Verify(tokNext); err != nil {
		t.Errorf("new key's token after the retirement: %v", err)
	}
}

// Rule: a token naming a kid the set lacks asks Refresh once, and
// verifies when the reloaded ring has the key; a known kid never asks.
func TestUnknownKidAsksForAReload(t *testing.T) {
	old, next := hmacKey(t, tokentest.Secret), asymKey(t, keys.EdDSA)
	other := keys.NewRing(mustSet(t, next, old)) // another replica, rotated
	tok, _ := mintWithRing(t, other)

	ring := keys.NewRing(mustSet(t, old)) // this replica, lagging: HS256 only
	var asked atomic.Int32
	v := newTestVerifier(t, func(c *VerifierConfig) {
		c.Ring = ring
		c.Refresh = func(kid string) bool {
			asked.Add(1)
			if kid != next.ID() {
				return false
			}
			ring.Store(mustSet(t, old, next.VerifyOnly()))
			return true
		}
	})
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("token of a key another replica rotated to: %v", err)
	}
	if asked.Load() != 1 {
		t.Errorf("Refresh asked %d times, want 1", asked.Load())
	}
	oldTok, _ := mintWithRing(t, keys.NewRing(mustSet(t, old)))
	if _, err := v.Verify(oldTok); err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 1 {
		t.Errorf("a known kid asked for a reload (%d asks)", asked.Load())
	}
	stranger := forge(t, map[string]any{"alg": "ES256", "typ": "JWT", "kid": strings.Repeat("k", 4096)}, tokentest.BaseClaims(), jwt.SigningMethodES256, asymKey(t, "stranger").SigningKey())
	if _, err := v.Verify(stranger); err == nil {
		t.Fatal("a stranger's token verified")
	}
	if asked.Load() != 1 {
		t.Errorf("an oversized kid asked for a reload (%d asks)", asked.Load())
	}
}
