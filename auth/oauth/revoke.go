package oauth

import (
	"encoding/json"
	"net/http"

	"github.com/mcpauth/mcpauth/auth/registry"
)

// revokeFamily revokes a refresh-token family: every access token minted
// in it (the current refresh token's and those recorded in its spent
// markers, back to the one minted with the authorization code) and its
// live refresh tokens. The family is marked revoked first, so a mint
// racing this call undoes itself (see issue).
func (s *Server) revokeFamily(r *http.Request, family, why string) {
	if family == "" {
		return
	}
	ctx := r.Context()
	_ = s.cfg.Store.PutState(ctx, registry.State{Kind: kindFamilyRevoked, Key: family, Value: []byte("{}"), ExpiresAt: s.cfg.Now().Add(s.cfg.RefreshTTL)})
	live, _ := s.cfg.Store.ListStateGroup(ctx, kindRefresh, family, s.cfg.Now())
	spent, _ := s.cfg.Store.ListStateGroup(ctx, kindSpent, family, s.cfg.Now())
	seen := map[string]bool{}
	for _, it := range append(live, spent...) {
		var rec refreshRecord
		if json.Unmarshal(it.Value, &rec) == nil && s.cfg.Revoker != nil && rec.AccessJTI != "" && !seen[rec.AccessJTI] {
			seen[rec.AccessJTI] = true
			_, _, _ = s.cfg.Revoker.RevokeJTI(ctx, rec.AccessJTI, "oauth", "refresh token family revoked: "+why)
		}
	}
	_, _ = s.cfg.Store.DeleteStateGroup(ctx, kindRefresh, family)
}

// revoke is RFC 7009: always 200; refresh tokens revoke their family,
// access tokens are revoked by jti.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	tok := r.PostForm.Get("token")
	if st, err := s.cfg.Store.ConsumeState(r.Context(), kindRefresh, hashKey(tok), s.cfg.Now()); err == nil {
		var rec refreshRecord
		if json.Unmarshal(st.Value, &rec) == nil && s.cfg.Revoker != nil && rec.AccessJTI != "" {
			_, _, _ = s.cfg.Revoker.RevokeJTI(r.Context(), rec.AccessJTI, "oauth", "revoked by the client")
		}
		s.revokeFamily(r, st.Group, "revoked by the client")
	} else if s.cfg.Inspector != nil && s.cfg.Revoker != nil {
		if in := s.cfg.Inspector.Inspect(tok); in.SignatureValid {
			if jti, ok := in.Claims["jti"].(string); ok {
				_, _, _ = s.cfg.Revoker.RevokeJTI(r.Context(), jti, "oauth", "revoked by the client")
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}
