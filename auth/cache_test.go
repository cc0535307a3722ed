package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauth/mcpauth/internal/tokentest"
)

func TestCachedVerificationsStillExpireAndRevoke(t *testing.T) {
	now := tokentest.T0
	set := NewRevocationSet()
	v := newTestVerifier(t, func(c *VerifierConfig) { c.Now = func() time.Time { return now }; c.Revoked = set })
	tok := tokentest.HS256(t, tokentest.BaseClaims()) // exp = T0 + 1h
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if v.current().cache.len() != 1 {
		t.Fatal("a verified token was not cached")
	}
	again, err := v.Verify(tok)
	if err != nil || again != first {
		t.Fatalf("cached verification: %v (same claims: %v)", err, again == first)
	}
	// Within the leeway after exp: still accepted.
	now = tokentest.T0.Add(time.Hour + 20*time.Second)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	// Beyond it: expired, even though it was cached.
	now = tokentest.T0.Add(time.Hour + 31*time.Second)
	if _, err := v.Verify(tok); err != ErrTokenExpired {
		t.Fatalf("cached token past exp: %v, want ErrTokenExpired", err)
	}
	if v.current().cache.len() != 0 {
		t.Fatal("an expired token stayed cached")
	}

	// Revocation applies to cached tokens at once.
	now = tokentest.T0
	tok2 := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["jti"] = "second" }))
	if _, err := v.Verify(tok2); err != nil {
		t.Fatal(err)
	}
	set.Add(map[string]time.Time{"second": tokentest.T0.Add(time.Hour)})
	if _, err := v.Verify(tok2); err != ErrTokenRevoked {
		t.Fatalf("cached then revoked: %v, want ErrTokenRevoked", err)
	}
	// Refusals are never cached.
	if _, err := v.Verify(tok2); err != ErrTokenRevoked {
		t.Fatalf("second look: %v", err)
	}
	bad := tok[:len(tok)-2] + "AA"
	_, _ = v.Verify(bad)
	if _, ok := v.current().cache.get(bad); ok {
		t.Fatal("a refused token was cached")
	}
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	v := newTestVerifier(t, nil)
	for i := 0; i < verifiedCacheSize+500; i++ {
		tok := tokentest.HS256(t, tokentest.ClaimsWith(func(c jwt.MapClaims) { c["jti"] = fmt.Sprint("j", i) }))
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.current().cache.len(); n > verifiedCacheSize {
		t.Fatalf("cache holds %d entries, bound is %d", n, verifiedCacheSize)
	}
}

func TestVerifiedCacheForgetsTokensNoLongerUsed(t *testing.T) {
	c := newVerifiedCache(100)
	c.idle = 20 * time.Millisecond
	used, unused := &Claims{}, &Claims{}
	c.put("used", used)
	c.put("unused", unused)
	// "used" is looked up more often than the cache ages; "unused" never.
	deadline := time.Now().Add(10 * c.idle)
	for time.Now().Before(deadline) {
		if got, ok := c.get("used"); !ok || got != used {
			t.Fatal("an entry in use was forgotten")
		}
		time.Sleep(c.idle / 4)
	}
	if _, ok := c.get("unused"); ok {
		t.Fatal("an entry unused for ten periods is still cached")
	}
	// Once nothing is used, the cache empties and its timer stops.
	waitUntil := time.Now().Add(time.Second)
	for {
		c.mu.RLock()
		empty := len(c.m) == 0 && c.old == nil && c.timer == nil
		c.mu.RUnlock()
		if empty {
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatalf("idle cache still holds %d entries (timer running: %v)", c.len(), c.timer != nil)
		}
		time.Sleep(c.idle / 2)
	}
	// It works again afterwards.
	c.put("again", used)
	if got, ok := c.get("again"); !ok || got != used {
		t.Fatal("cache unusable after emptying")
	}
	c.drop("again")
	if c.len() != 0 {
		t.Fatal("drop left the entry")
	}
}
