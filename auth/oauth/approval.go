package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// Approval from the chat: the consent page shows a short request id and
// waits (a no-JavaScript page that reloads itself); an admin asks the
// assistant to approve that id (approve_authorization) or deny it, and
// the waiting page continues by itself.

// grant is an admin's approval of a pending request.
type grant struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	ApprovedBy string   `json:"approved_by"`
}

// Pending is a pending authorization request as an admin sees it.
type Pending struct {
	ID           string    `json:"request_id"`
	ClientName   string    `json:"client_name"`
	OAuthClient  string    `json:"oauth_client_id"`
	RedirectHost string    `json:"redirect_host"`
	Scopes       []string  `json:"requested_scopes"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// ShortID is how a request id is shown to people: "K7Q-2M4".
func ShortID(id string) string {
	if len(id) < 6 {
		return strings.ToUpper(id)
	}
	return strings.ToUpper(id[:3] + "-" + id[3:6])
}

// PendingAuthorizations lists requests waiting for an answer, newest
// first (the one a person just started is on top).
func (s *Server) PendingAuthorizations(ctx context.Context) ([]Pending, error) {
	items, err := s.cfg.Store.ListState(ctx, kindRequest, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	type row struct {
		p       Pending
		created time.Time
	}
	var rows []row
	for _, it := range items {
		var req authRequest
		if json.Unmarshal(it.Value, &req) != nil || req.Grant != nil || req.Denied {
			continue
		}
		host := req.RedirectURI
		if u, err := url.Parse(req.RedirectURI); err == nil && u.Host != "" {
			host = u.Host
		}
		rows = append(rows, row{Pending{ID: ShortID(it.Key), ClientName: req.ClientName, OAuthClient: req.ClientID,
			RedirectHost: host, Scopes: append([]string{}, req.Scopes...), ExpiresAt: it.ExpiresAt}, req.Created})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return b.created.Compare(a.created) })
	out := make([]Pending, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.p)
	}
	return out, nil
}

// ErrNoSuchRequest reports an unknown, answered or expired request id.
var ErrNoSuchRequest = errors.New("no pending authorization request with that id")

// find resolves a short id (case-insensitive, with or without the dash).
func (s *Server) find(ctx context.Context, short string) (registry.State, authRequest, error) {
	want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(short), "-", ""))
	if len(want) < 6 {
		return registry.State{}, authRequest{}, ErrNoSuchRequest
	}
	items, err := s.cfg.Store.ListState(ctx, kindRequest, s.cfg.Now())
	if err != nil {
		return registry.State{}, authRequest{}, err
	}
	var match []registry.State
	for _, it := range items {
		if strings.HasPrefix(it.Key, want) {
			match = append(match, it)
		}
	}
	if len(match) != 1 {
		return registry.State{}, authRequest{}, ErrNoSuchRequest
	}
	var req authRequest
	if json.Unmarshal(match[0].Value, &req) != nil || req.Grant != nil || req.Denied {
		return registry.State{}, authRequest{}, ErrNoSuchRequest
	}
	return match[0], req, nil
}

// Approve grants a pending request: its tokens carry name as client id
// and scopes (default: what was requested), which the caller must hold.
func (s *Server) Approve(ctx context.Context, caller *auth.Claims, short, name string, scopes []string) (Pending, error) {
	if caller == nil {
		return Pending{}, auth.ErrNoCallerIdentity
	}
	st, req, err := s.find(ctx, short)
	if err != nil {
		return Pending{}, err
	}
	derived := name == ""
	if derived {
		name = clientIDFromName(req.ClientName)
	}
	if err := auth.ValidateClientID(name); err != nil {
		return Pending{}, err
	}
	if err := s.clientAllowed(name); err != nil {
		if derived {
			return Pending{}, fmt.Errorf("%w; approve with client_id set to one that is", err)
		}
		return Pending{}, err
	}
	if derived {
		// The client chose its name: the id made of it must not be one
		// that already exists, or the client would act as someone else.
		if err := s.derivedIDFree(ctx, name, st.Key); err != nil {
			return Pending{}, err
		}
	}
	if scopes == nil {
		scopes = req.Scopes
	}
	scopes = auth.NormalizeScopes(scopes)
	if err := auth.ValidateScopes(scopes); err != nil {
		return Pending{}, err
	}
	for _, sc := range scopes {
		if !caller.Scope.Has(sc) {
			return Pending{}, fmt.Errorf("%w: %q", auth.ErrScopeNotHeld, sc)
		}
		if len(req.Scopes) > 0 && !slices.Contains(req.Scopes, sc) {
			return Pending{}, fmt.Errorf("scope %q was not requested by the client", sc)
		}
	}
	req.Grant = &grant{Name: name, Scopes: scopes, ApprovedBy: caller.Subject}
	st.Value, _ = json.Marshal(req)
	if err := s.cfg.Store.UpdateState(ctx, st, s.cfg.Now()); err != nil {
		return Pending{}, err
	}
	auth.Audit(ctx, s.cfg.Logger, "oauth.approved", "client_id", name, "oauth_client_id", req.ClientID, "scopes", strings.Join(scopes, " "), "approved_by", caller.Subject)
	return Pending{ID: ShortID(st.Key), ClientName: req.ClientName, OAuthClient: req.ClientID, Scopes: scopes, ExpiresAt: st.ExpiresAt}, nil
}

// Deny refuses a pending request; the waiting page sends access_denied.
func (s *Server) Deny(ctx context.Context, caller *auth.Claims, short string) error {
	st, req, err := s.find(ctx, short)
	if err != nil {
		return err
	}
	req.Denied = true
	st.Value, _ = json.Marshal(req)
	if err := s.cfg.Store.UpdateState(ctx, st, s.cfg.Now()); err != nil {
		return err
	}
	who := ""
	if caller != nil {
		who = caller.Subject
	}
	auth.Audit(ctx, s.cfg.Logger, "oauth.denied", "oauth_client_id", req.ClientID, "denied_by", who)
	return nil
}

// derivedIDFree refuses a client id derived from a client's chosen name
// when it is already a subject here, compared ignoring case: a client id
// with tokens, a reserved identity, one allowed by MCP_ALLOWED_CLIENTS
// (the operator's real clients), the name of an unused enrollment code,
// or the id granted to another sign-in (request self excluded) whose
// tokens are not minted yet. The admin can still pick the id explicitly.
func (s *Server) derivedIDFree(ctx context.Context, id, self string) error {
	taken := func(why string) error {
		return fmt.Errorf("the client id %q made from the client's name is already %s; approve with client_id set to a new id (or to that one, if this really is the same client)", id, why)
	}
	is := func(other string) bool { return strings.EqualFold(other, id) }
	if slices.ContainsFunc(s.cfg.ReservedSubjects, is) {
		return taken("a built-in identity")
	}
	if slices.ContainsFunc(s.cfg.AllowedClients, is) {
		return taken("in MCP_ALLOWED_CLIENTS")
	}
	if s.cfg.Clients == nil {
		return taken("possibly in use (this server cannot list its clients)")
	}
	now := s.cfg.Now()
	clients, err := s.cfg.Clients.ListClients(ctx, now)
	if err != nil {
		return fmt.Errorf("cannot check the client id %q: %w", id, err)
	}
	for _, c := range clients {
		if is(c.ClientID) {
			return taken("used by tokens here")
		}
	}
	inState := func(kind string, name func([]byte) string) (bool, error) {
		items, err := s.cfg.Store.ListState(ctx, kind, now)
		if err != nil {
			return false, fmt.Errorf("cannot check the client id %q: %w", id, err)
		}
		for _, it := range items {
			if !(kind == kindRequest && it.Key == self) && is(name(it.Value)) {
				return true, nil
			}
		}
		return false, nil
	}
	for _, k := range []struct {
		kind, why string
		name      func([]byte) string
	}{
		{kindEnrollment, "reserved by an enrollment code", func(b []byte) string {
			var r enrollmentRecord
			_ = json.Unmarshal(b, &r)
			return r.Name
		}},
		{kindRequest, "granted to another sign-in", func(b []byte) string {
			var r authRequest
			if json.Unmarshal(b, &r) != nil || r.Grant == nil {
				return ""
			}
			return r.Grant.Name
		}},
		{kindCode, "granted to another sign-in", func(b []byte) string {
			var r codeRecord
			_ = json.Unmarshal(b, &r)
			return r.Subject
		}},
	} {
		if hit, err := inState(k.kind, k.name); err != nil {
			return err
		} else if hit {
			return taken(k.why)
		}
	}
	return nil
}

// clientIDFromName turns a client's display name into a client id.
func clientIDFromName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "oauth-client"
	}
	return b.String()
}

// wait is the page that waits for an admin's answer; it reloads itself
// every few seconds (no JavaScript) and continues when there is one.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("request")
	st, err := s.cfg.Store.GetState(r.Context(), kindRequest, id, s.cfg.Now())
	var req authRequest
	if err != nil || json.Unmarshal(st.Value, &req) != nil {
		s.errorPage(w, http.StatusBadRequest, "This request has expired", "Start the sign-in again from your application.")
		return
	}
	if !constantEqual(q.Get("csrf"), req.CSRF) {
		s.errorPage(w, http.StatusForbidden, "Forbidden", "This page did not come from this server.")
		return
	}
	switch {
	case req.Denied:
		_, _ = s.cfg.Store.ConsumeState(r.Context(), kindRequest, id, s.cfg.Now())
		s.redirectError(w, r, req.RedirectURI, req.State, "access_denied", "the admin denied the request")
	case req.Grant != nil:
		if _, err := s.cfg.Store.ConsumeState(r.Context(), kindRequest, id, s.cfg.Now()); err != nil {
			s.errorPage(w, http.StatusBadRequest, "This request was already answered", "Start the sign-in again from your application.")
			return
		}
		s.grantCode(w, r, req, *req.Grant)
	default:
		pageHeaders(w, "")
		w.Header().Set("Refresh", "3")
		w.WriteHeader(http.StatusOK)
		_ = waitTmpl.Execute(w, map[string]string{"ShortID": ShortID(id), "Client": orDefault(req.ClientName, "An application")})
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
