package oauth

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

// codeRecord is what an authorization code stands for.
type codeRecord struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	CodeChallenge string   `json:"code_challenge"`
	Resource      string   `json:"resource"`
	Subject       string   `json:"subject"`
	Scopes        []string `json:"scopes"`
	ApprovedBy    string   `json:"approved_by"`
}

// refreshRecord is what a refresh token stands for.
type refreshRecord struct {
	ClientID   string   `json:"client_id"`
	Subject    string   `json:"subject"`
	Scopes     []string `json:"scopes"`
	Resource   string   `json:"resource"`
	ApprovedBy string   `json:"approved_by"`
	AccessJTI  string   `json:"access_jti"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "authorization_code":
		codeKey := hashKey(f.Get("code"))
		st, err := s.cfg.Store.ConsumeState(r.Context(), kindCode, codeKey, s.cfg.Now())
		var rec codeRecord
		if err != nil || json.Unmarshal(st.Value, &rec) != nil {
			// A redeemed code presented again was copied: revoke the
			// tokens issued from it (OAuth 2.1 4.1.3).
			if used, err := s.cfg.Store.GetState(r.Context(), kindCodeUsed, codeKey, s.cfg.Now()); err == nil {
				s.revokeFamily(r, used.Group, "authorization code reuse")
				auth.Audit(auth.WithRemoteAddr(r.Context(), bearer.ClientAddress(r)), s.cfg.Logger, auth.EventTokenRevoked, "reason", "authorization code reuse", "family", used.Group)
			}
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown, expired or already used")
			return
		}
		switch {
		case f.Get("client_id") != rec.ClientID:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
		case f.Get("redirect_uri") != rec.RedirectURI:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		case f.Get("code_verifier") == "" || subtle.ConstantTimeCompare([]byte(s256(f.Get("code_verifier"))), []byte(rec.CodeChallenge)) != 1:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		case f.Get("resource") != "" && strings.TrimRight(f.Get("resource"), "/") != rec.Resource:
			oauthError(w, http.StatusBadRequest, "invalid_target", "resource does not match the authorization request")
		default:
			// The code is marked redeemed, with its family, before
			// anything is minted, so a replay can always find what to
			// revoke.
			family := randomID()
			_ = s.cfg.Store.PutState(r.Context(), registry.State{Kind: kindCodeUsed, Key: codeKey, Group: family, Value: []byte("{}"), ExpiresAt: s.cfg.Now().Add(s.cfg.RefreshTTL)})
			s.issue(w, r, refreshRecord{ClientID: rec.ClientID, Subject: rec.Subject, Scopes: rec.Scopes, Resource: rec.Resource, ApprovedBy: rec.ApprovedBy}, family)
		}
	case "refresh_token":
		key := hashKey(f.Get("refresh_token"))
		// The client is checked before the token is consumed: a refused
		// request changes nothing, so the real client's next refresh
		// works and reuse detection still sees a true replay.
		if cur, err := s.cfg.Store.GetState(r.Context(), kindRefresh, key, s.cfg.Now()); err == nil {
			var rec refreshRecord
			if json.Unmarshal(cur.Value, &rec) == nil && f.Get("client_id") != "" && f.Get("client_id") != rec.ClientID {
				auth.Audit(auth.WithRemoteAddr(r.Context(), bearer.ClientAddress(r)), s.cfg.Logger, auth.EventAuthFailed,
					"reason", "refresh token presented by another client", "oauth_client_id", rec.ClientID, "claimed_oauth_client_id", untrusted.Clip(f.Get("client_id"), 64))
				oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
				return
			}
		}
		st, err := s.cfg.Store.ConsumeState(r.Context(), kindRefresh, key, s.cfg.Now())
		var rec refreshRecord
		if err != nil || json.Unmarshal(st.Value, &rec) != nil {
			// A spent token presented again means it was copied: revoke
			// the whole family (RFC 9700 4.14.2).
			if spent, err := s.cfg.Store.GetState(r.Context(), kindSpent, key, s.cfg.Now()); err == nil {
				s.revokeFamily(r, spent.Group, "refresh token reuse")
				auth.Audit(r.Context(), s.cfg.Logger, auth.EventTokenRevoked, "reason", "refresh token reuse", "family", spent.Group)
			}
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, expired or already used")
			return
		}
		if f.Get("client_id") != "" && f.Get("client_id") != rec.ClientID {
			// Reached only if the read above failed (records are never
			// edited): put the token back so the refusal changes nothing.
			_ = s.cfg.Store.PutState(r.Context(), st)
			oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
			return
		}
		// The spent marker keeps the record (no secret in it): its
		// access token is revoked with the family if reuse is detected.
		_ = s.cfg.Store.PutState(r.Context(), registry.State{Kind: kindSpent, Key: key, Group: st.Group, Value: st.Value, ExpiresAt: st.ExpiresAt})
		s.issue(w, r, rec, st.Group)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

// issue mints an access token (recorded in the registry before it is
// returned) and a rotated refresh token of the family.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, rec refreshRecord, family string) {
	caller := &auth.Claims{Scope: auth.Scopes(rec.Scopes)}
	caller.Subject = "oauth:" + rec.ApprovedBy
	tok, err := s.cfg.Minter.Issue(r.Context(), auth.IssueRequest{
		ClientID: rec.Subject, Expiry: auth.Expiry{Duration: s.cfg.AccessTTL}, Scopes: rec.Scopes, Caller: caller, Audience: rec.Resource,
		Via: "oauth", AuditAttrs: []any{"oauth_client_id", rec.ClientID},
	})
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", auth.Message(err))
		return
	}
	rec.AccessJTI = tok.JTI
	refresh := randomToken()
	val, _ := json.Marshal(rec)
	if err := s.cfg.Store.PutState(r.Context(), registry.State{Kind: kindRefresh, Key: hashKey(refresh), Group: family, Value: val, ExpiresAt: s.cfg.Now().Add(s.cfg.RefreshTTL)}); err != nil {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot store the refresh token")
		return
	}
	// A replay detected while this request ran revoked the family: what
	// was just minted goes with it. (revokeFamily marks the family before
	// it lists it, and this checks the mark after storing, so one of the
	// two always sees the other.)
	if _, err := s.cfg.Store.GetState(r.Context(), kindFamilyRevoked, family, s.cfg.Now()); err == nil {
		s.revokeFamily(r, family, "minted while the family was revoked")
		oauthError(w, http.StatusBadRequest, "invalid_grant", "this grant was revoked")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Token, "token_type": "Bearer", "expires_in": int64(s.cfg.AccessTTL / time.Second),
		"refresh_token": refresh, "scope": tok.Scopes.String(),
	})
}
