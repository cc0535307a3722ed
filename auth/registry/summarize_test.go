package registry

import (
	"slices"
	"time"

	"github.com/mcpauth/mcpauth/auth"
)

// Summarize groups tokens by client, ordered by client id: the plain Go
// statement of what ListClients computes in SQL, and the oracle the
// contract tests hold both backends to.
func Summarize(tokens []Token, now time.Time) []Client {
	byID := map[string]*Client{}
	var order []string
	for _, t := range tokens {
		c, ok := byID[t.ClientID]
		if !ok {
			c = &Client{ClientID: t.ClientID}
			byID[t.ClientID] = c
			order = append(order, t.ClientID)
		}
		c.TotalTokens++
		if t.IssuedAt.After(c.LastIssued) {
			c.LastIssued = t.IssuedAt
		}
		if t.Revoked() {
			c.RevokedTokens++
		}
		if !t.Active(now) {
			continue
		}
		c.ActiveTokens++
		c.Scopes = auth.NormalizeScopes(append(c.Scopes, t.Scopes...))
		if t.ExpiresAt.IsZero() {
			c.NeverExpires = true
		} else if t.ExpiresAt.After(c.LatestExpiry) {
			c.LatestExpiry = t.ExpiresAt
		}
	}
	slices.Sort(order)
	out := make([]Client, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}
