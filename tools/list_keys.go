package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpauth/mcpauth/auth/keys"
)

// KeyRing is the server's keys: the one that signs and every one that
// verifies, with their lifecycle (*keys.Ring).
type KeyRing interface {
	Lookup(kid string) (*keys.Key, bool)
	// Set is the current set, with each key's lifecycle.
	Set() *keys.Set
}

// KeyCounter counts live tokens (neither revoked nor expired) by the kid
// of the key that signed them (the registry).
type KeyCounter interface {
	LiveTokensByKey(ctx context.Context, now time.Time) (map[string]int, error)
}

func listKeysTool() mcp.Tool {
	return mcp.NewTool("list_keys",
		mcp.WithDescription("List the keys that sign and verify tokens (admin only): each one's kid, algorithm and state "+
			"(signing: mints new tokens; verifying: still accepts the tokens it signed, until its grace ends; "+
			"retired: its grace ended or it is no longer configured, so its tokens are refused), "+
			"and how many live tokens (neither revoked nor expired) it signed. Secrets and private keys are never shown."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// KeyInfo is one key in list_keys' structured content.
type KeyInfo struct {
	// KeyID is the kid tokens name ("" for the tokens recorded before
	// kids were, whose key is not known).
	KeyID string `json:"kid"`
	// Algorithm is HS256, ES256, EdDSA or RS256 ("" when not known).
	Algorithm string `json:"alg,omitempty"`
	// State is signing, verifying, retired or unknown.
	State string `json:"state"`
	// Public says the key is published in /.well-known/jwks.json
	// (asymmetric keys); an HMAC secret never is.
	Public bool `json:"public"`
	// LiveTokens counts the tokens it signed that are neither revoked
	// nor expired.
	LiveTokens int `json:"live_tokens"`
	// VerifiesUntil is when a verifying key's grace ends (RFC 3339),
	// once decided.
	VerifiesUntil string `json:"verifies_until,omitempty"`
	// RetiredAt is when a retired key was retired (RFC 3339), when
	// recorded.
	RetiredAt string `json:"retired_at,omitempty"`
}

// KeyList is list_keys' structured content.
type KeyList struct {
	Keys []KeyInfo `json:"keys"`
}

// Key states.
const (
	keySigning   = "signing"
	keyVerifying = "verifying"
	keyRetired   = "retired"
	keyUnknown   = "unknown"
)

func (t *Toolset) listKeys(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, err := parseArgs(req); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	l, err := ListKeys(ctx, t.deps.Keys, t.deps.KeyTokens, t.deps.Now())
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return mcp.NewToolResultStructured(l, FormatKeys(l)), nil
}

// ListKeys reports ring's keys with their live tokens (counts may be
// nil: no counts), then the kids of live tokens whose key is no longer
// configured (retired) and of those recorded without a kid (unknown).
func ListKeys(ctx context.Context, ring KeyRing, counts KeyCounter, now time.Time) (KeyList, error) {
	live := map[string]int{}
	if counts != nil {
		var err error
		if live, err = counts.LiveTokensByKey(ctx, now); err != nil {
			return KeyList{}, fmt.Errorf("cannot count tokens by key: %w", err)
		}
	}
	out := KeyList{Keys: []KeyInfo{}}
	seen := map[string]bool{}
	set := ring.Set()
	active := set.Active()
	for _, k := range set.Keys() {
		info := KeyInfo{KeyID: k.ID(), Algorithm: k.Alg(), State: keyVerifying, Public: !k.Symmetric(), LiveTokens: live[k.ID()]}
		if k.ID() == active.ID() {
			info.State = keySigning
		} else if until, ok := set.Until(k.ID()); ok {
			info.VerifiesUntil = until.UTC().Format(time.RFC3339)
		}
		out.Keys = append(out.Keys, info)
		seen[k.ID()] = true
	}
	retired := set.RetiredKeys()
	var gone []string
	for kid, n := range live {
		if !seen[kid] && n > 0 {
			gone = append(gone, kid)
		}
	}
	for kid := range retired {
		if !seen[kid] && live[kid] == 0 {
			gone = append(gone, kid)
		}
	}
	slices.Sort(gone) // "" (unknown) first
	for _, kid := range gone {
		state := keyRetired
		if kid == "" {
			state = keyUnknown
		}
		info := KeyInfo{KeyID: kid, State: state, LiveTokens: live[kid]}
		if at, ok := retired[kid]; ok && !at.IsZero() {
			info.RetiredAt = at.UTC().Format(time.RFC3339)
		}
		out.Keys = append(out.Keys, info)
	}
	return out, nil
}

// FormatKeys renders the key list for people.
func FormatKeys(l KeyList) string {
	var b strings.Builder
	for _, k := range l.Keys {
		switch k.State {
		case keyUnknown:
			fmt.Fprintf(&b, "- (no kid recorded): %d live token(s) recorded before tokens named their key; they verify with the HS256 secret if it signed them\n", k.LiveTokens)
		case keyRetired:
			when := "no longer configured"
			if k.RetiredAt != "" {
				when = "grace ended " + k.RetiredAt
			}
			fmt.Fprintf(&b, "- %s: retired (%s), %d live token(s) it signed are refused\n", k.KeyID, when, k.LiveTokens)
		default:
			kind := "secret, never published"
			if k.Public {
				kind = "public key in the JWKS"
			}
			state := k.State
			if k.VerifiesUntil != "" {
				state += " until " + k.VerifiesUntil
			}
			fmt.Fprintf(&b, "- %s: %s, %s (%s), %d live token(s)\n", k.KeyID, k.Algorithm, state, kind, k.LiveTokens)
		}
	}
	return strings.TrimSpace(b.String())
}
