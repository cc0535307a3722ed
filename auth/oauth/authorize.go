package oauth

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// authRequest is a pending authorization request.
type authRequest struct {
	ClientID      string   `json:"client_id"`
	ClientName    string   `json:"client_name"`
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state"`
	CodeChallenge string   `json:"code_challenge"`
	Scopes        []string `json:"scopes"`
	Resource      string   `json:"resource"`
	CSRF          string   `json:"csrf"`
	// Addr is the address (addressKey) the request came from, for the
	// per-address cap.
	Addr string `json:"addr,omitempty"`
	// Created orders the admin's list (newest first).
	Created time.Time `json:"created,omitempty"`
	// Grant or Denied is set when an admin answers from the chat.
	Grant  *grant `json:"grant,omitempty"`
	Denied bool   `json:"denied,omitempty"`
}

// Bounds on what a sign-in request may carry: every pending request is
// stored and read back under the server-wide pending lock, and its state
// is sent back to the client.
const (
	maxState       = 2048
	maxAskedScopes = 64
)

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	addr := addressKey(bearer.ClientAddress(r))
	if wait, blocked := s.pendingRate.Blocked(addr); blocked {
		s.refusePending(w, r, r.URL.Query().Get("client_id"), &pendingRefusal{"rate",
			"Too many sign-ins were started from this address. Wait a little and try again.", wait})
		return
	}
	q := r.URL.Query()
	c, err := s.client(r, q.Get("client_id"))
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "This application cannot sign in", strings.ToUpper(err.Error()[:1])+err.Error()[1:]+".")
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" && len(c.RedirectURIs) == 1 {
		redirect = c.RedirectURIs[0]
	}
	if !redirectAllowed(c, redirect) { // exact, but any port for a native app's loopback URI
		s.errorPage(w, http.StatusBadRequest, "Redirect not allowed", "The redirect address does not match one the application registered.")
		return
	}
	state := q.Get("state")
	if len(state) > maxState {
		// Too long to keep with the request or to send back.
		s.errorPage(w, http.StatusBadRequest, "This sign-in request is malformed", fmt.Sprintf("Its state parameter is longer than %d bytes.", maxState))
		return
	}
	fail := func(code, desc string) { s.redirectError(w, r, redirect, state, code, desc) }
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", `response_type must be "code"`)
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" || q.Get("code_challenge_method") != "S256" || len(challenge) != 43 {
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		resource = s.cfg.Resources[0]
	}
	if !slices.Contains(s.cfg.Resources, strings.TrimRight(resource, "/")) {
		fail("invalid_target", "this server grants tokens only for its own resource")
		return
	}
	scopes := auth.ParseScopes(q.Get("scope"))
	if len(scopes) > maxAskedScopes {
		fail("invalid_scope", fmt.Sprintf("at most %d scopes may be asked for", maxAskedScopes))
		return
	}
	if err := auth.ValidateScopes(scopes); err != nil {
		fail("invalid_scope", auth.Message(err))
		return
	}
	req := authRequest{
		ClientID: c.ClientID, ClientName: c.ClientName, RedirectURI: redirect, State: state,
		CodeChallenge: challenge, Scopes: scopes, Resource: strings.TrimRight(resource, "/"), CSRF: randomToken(),
		Addr: addr, Created: s.cfg.Now(),
	}
	id := randomID()
	val, _ := json.Marshal(req)
	s.pendingMu.Lock()
	refusal, err := s.checkPending(r.Context(), c.ClientID, addr)
	if err == nil && refusal == nil {
		err = s.cfg.Store.PutState(r.Context(), registry.State{Kind: kindRequest, Key: id, Value: val, ExpiresAt: s.cfg.Now().Add(s.cfg.RequestTTL)})
	}
	s.pendingMu.Unlock()
	if refusal != nil {
		// A refused start counts against the address's rate too: each
		// one read the pending requests under the server-wide lock.
		s.pendingRate.Fail(addr)
		s.refusePending(w, r, c.ClientID, refusal)
		return
	}
	if err != nil {
		s.errorPage(w, http.StatusServiceUnavailable, "Try again", "The server cannot store the request right now.")
		return
	}
	s.pendingRate.Fail(addr)
	s.consentPage(w, http.StatusOK, id, req, "")
}

func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	src := bearer.ClientAddress(r)
	guard := bearer.Guard{Throttle: s.cfg.Throttle}
	if _, blocked := guard.Blocked(w, src); blocked {
		s.errorPage(w, http.StatusTooManyRequests, "Too many attempts", "Too many wrong codes from this address. Wait a little and try again.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	id := r.PostForm.Get("request")
	st, err := s.cfg.Store.GetState(r.Context(), kindRequest, id, s.cfg.Now())
	var req authRequest
	if err != nil || json.Unmarshal(st.Value, &req) != nil {
		s.errorPage(w, http.StatusBadRequest, "This request has expired", "Start the sign-in again from your application.")
		return
	}
	if req.Grant != nil || req.Denied {
		s.errorPage(w, http.StatusBadRequest, "This request was already answered", "Start the sign-in again from your application.")
		return
	}
	if !constantEqual(r.PostForm.Get("csrf"), req.CSRF) {
		s.errorPage(w, http.StatusForbidden, "Forbidden", "The form did not come from this page.")
		return
	}
	if r.PostForm.Get("action") == "deny" {
		_, _ = s.cfg.Store.ConsumeState(r.Context(), kindRequest, id, s.cfg.Now())
		s.redirectError(w, r, req.RedirectURI, req.State, "access_denied", "the request was denied")
		return
	}
	code := normalizeCode(r.PostForm.Get("enrollment_code"))
	enr, err := s.cfg.Store.ConsumeState(r.Context(), kindEnrollment, hashKey(code), s.cfg.Now())
	var rec enrollmentRecord
	if code == "" || err != nil || json.Unmarshal(enr.Value, &rec) != nil {
		guard.Fail(src)
		auth.Audit(auth.WithRemoteAddr(r.Context(), src), s.cfg.Logger, auth.EventAuthFailed, "reason", "wrong enrollment code", "oauth_client_id", req.ClientID)
		s.consentPage(w, http.StatusUnauthorized, id, req, "That code is not valid: it may be mistyped, used already or expired. Ask your admin for a new one.")
		return
	}
	// Granted scopes: what was asked for, within what the enrollment
	// allows; nothing asked means everything it allows.
	granted := rec.Scopes
	if len(req.Scopes) > 0 {
		granted = nil
		for _, sc := range req.Scopes {
			if slices.Contains(rec.Scopes, sc) || (slices.Contains(rec.Scopes, auth.ScopeAdmin)) {
				granted = append(granted, sc)
			}
		}
	}
	if _, err := s.cfg.Store.ConsumeState(r.Context(), kindRequest, id, s.cfg.Now()); err != nil {
		s.errorPage(w, http.StatusBadRequest, "This request was already answered", "Start the sign-in again from your application.")
		return
	}
	s.grantCode(w, r.WithContext(auth.WithRemoteAddr(r.Context(), src)), req, grant{Name: rec.Name, Scopes: granted, ApprovedBy: rec.CreatedBy})
}

// grantCode issues the authorization code of an approved request and
// sends the browser back to the client.
func (s *Server) grantCode(w http.ResponseWriter, r *http.Request, req authRequest, g grant) {
	authCode := randomToken()
	cv, _ := json.Marshal(codeRecord{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge,
		Resource: req.Resource, Subject: g.Name, Scopes: g.Scopes, ApprovedBy: g.ApprovedBy,
	})
	if err := s.cfg.Store.PutState(r.Context(), registry.State{Kind: kindCode, Key: hashKey(authCode), Value: cv, ExpiresAt: s.cfg.Now().Add(s.cfg.CodeTTL)}); err != nil {
		s.errorPage(w, http.StatusServiceUnavailable, "Try again", "The server cannot store the authorization right now.")
		return
	}
	auth.Audit(r.Context(), s.cfg.Logger, "oauth.authorized", "client_id", g.Name, "oauth_client_id", req.ClientID,
		"scopes", strings.Join(g.Scopes, " "), "approved_by", g.ApprovedBy)
	s.redirect(w, r, req.RedirectURI, url.Values{"code": {authCode}, "state": {req.State}, "iss": {s.cfg.Issuer}})
}

func constantEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
