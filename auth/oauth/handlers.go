package oauth

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/registry"
)

// Routes mounts the authorization server's endpoints on mux.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/{path...}", s.metadata)
	mux.HandleFunc("POST /register", s.register)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /authorize", s.consent)
	mux.HandleFunc("GET /authorize/wait", s.wait)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /revoke", s.revoke)
}

// Metadata is the RFC 8414 document.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RegistrationEndpoint                   string   `json:"registration_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ClientIDMetadataDocumentSupported      bool     `json:"client_id_metadata_document_supported"`
	AuthorizationResponseIssParameter      bool     `json:"authorization_response_iss_parameter_supported"`
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	md := Metadata{
		Issuer:                                 s.cfg.Issuer,
		AuthorizationEndpoint:                  s.cfg.Issuer + "/authorize",
		TokenEndpoint:                          s.cfg.Issuer + "/token",
		RegistrationEndpoint:                   s.cfg.Issuer + "/register",
		RevocationEndpoint:                     s.cfg.Issuer + "/revoke",
		IntrospectionEndpoint:                  s.cfg.Issuer + "/introspect",
		ResponseTypesSupported:                 []string{"code"},
		ResponseModesSupported:                 []string{"query"},
		GrantTypesSupported:                    []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      []string{"none"},
		RevocationEndpointAuthMethodsSupported: []string{"none"},
		ScopesSupported:                        nonNil(s.cfg.ScopesSupported),
		ClientIDMetadataDocumentSupported:      true,
		AuthorizationResponseIssParameter:      true,
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, md)
}

// Client is a registered OAuth client (RFC 7591).
type Client struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
}

// registrationTTL keeps registrations for a year; clients re-register.
const registrationTTL = 365 * 24 * time.Hour

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	src := auth.ClientAddress(r)
	if s.cfg.Throttle != nil {
		if wait, blocked := s.cfg.Throttle.Blocked(src); blocked {
			w.Header().Set("Retry-After", auth.RetryAfter(wait))
			oauthError(w, http.StatusTooManyRequests, "slow_down", "too many requests from this address")
			return
		}
		// Registrations count against the same budget as failures: they
		// are cheap to make and each one is stored.
		s.cfg.Throttle.Fail(src)
	}
	var c Client
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&c); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON client metadata document")
		return
	}
	// The server names the client and stamps the time, whatever the
	// body says.
	c.ClientID, c.ClientIDIssuedAt = "mcp-"+randomID(), s.cfg.Now().Unix()
	c.ClientName = auth.Clip(strings.TrimSpace(c.ClientName), 100)
	fillClientDefaults(&c)
	if err := s.checkClient(c); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", err.Error())
		return
	}
	val, _ := json.Marshal(c)
	if err := s.cfg.Store.PutState(r.Context(), registry.State{Kind: kindClient, Key: c.ClientID, Value: val, ExpiresAt: s.cfg.Now().Add(registrationTTL)}); err != nil {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot store the registration")
		return
	}
	auth.Audit(auth.WithRemoteAddr(r.Context(), src), s.cfg.Logger, "oauth.client_registered", "oauth_client_id", c.ClientID, "client_name", c.ClientName)
	writeJSON(w, http.StatusCreated, c)
}

// fillClientDefaults applies RFC 7591 defaults.
func fillClientDefaults(c *Client) {
	if c.ApplicationType == "" {
		c.ApplicationType = "web"
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	if len(c.ResponseTypes) == 0 {
		c.ResponseTypes = []string{"code"}
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = "none"
	}
}

// checkClient validates registration metadata.
func (s *Server) checkClient(c Client) error {
	if c.TokenEndpointAuthMethod != "none" {
		return errors.New(`only public clients are supported: token_endpoint_auth_method must be "none"`)
	}
	for _, g := range c.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return fmt.Errorf("grant type %q is not supported", auth.Clip(g, 40))
		}
	}
	if !slices.Equal(c.ResponseTypes, []string{"code"}) {
		return errors.New(`response_types must be ["code"]`)
	}
	if c.ApplicationType != "web" && c.ApplicationType != "native" {
		return errors.New(`application_type must be "web" or "native"`)
	}
	if len(c.RedirectURIs) == 0 || len(c.RedirectURIs) > 10 {
		return errors.New("give 1 to 10 redirect_uris")
	}
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || u.Fragment != "" || u.User != nil || u.Host == "" && u.Scheme != "" && !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("redirect URI %q is not an absolute URI without a fragment", auth.Clip(ru, 80))
		}
		loopback := isLoopbackHTTP(u)
		switch {
		case u.Scheme == "https":
		case loopback && (c.ApplicationType == "native" || s.cfg.AllowLoopbackRedirects):
		case c.ApplicationType == "native" && strings.Contains(u.Scheme, "."): // private-use scheme, e.g. com.example.app:/cb
		default:
			return fmt.Errorf("redirect URI %q must be https (loopback http only for native clients)", auth.Clip(ru, 80))
		}
	}
	return nil
}

// isLoopbackHTTP reports an http URI on a loopback host.
func isLoopbackHTTP(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1")
}

// redirectAllowed reports whether a requested redirect URI is one the
// client registered: exactly, or, for a native client's loopback URI, with
// any port (RFC 8252 7.3: the app listens on whatever port it gets), the
// scheme, host, path and query still exact.
func redirectAllowed(c Client, requested string) bool {
	if slices.Contains(c.RedirectURIs, requested) {
		return true
	}
	if c.ApplicationType != "native" {
		return false
	}
	u, err := url.Parse(requested)
	if err != nil || !isLoopbackHTTP(u) || u.User != nil || u.Fragment != "" || u.Opaque != "" || strings.Contains(requested, "#") {
		return false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return false
		}
	}
	for _, reg := range c.RedirectURIs {
		ru, err := url.Parse(reg)
		if err != nil || !isLoopbackHTTP(ru) {
			continue
		}
		if ru.Hostname() == u.Hostname() && ru.EscapedPath() == u.EscapedPath() && ru.RawQuery == u.RawQuery && ru.ForceQuery == u.ForceQuery {
			return true
		}
	}
	return false
}

// client resolves a client id: a metadata document URL first, then a
// dynamic registration.
func (s *Server) client(r *http.Request, id string) (Client, error) {
	if isMetadataURL(id) {
		// An uncached document is an outbound fetch a stranger asked
		// for: it counts against the address's budget, like a
		// registration.
		if _, err := s.cfg.Store.GetState(r.Context(), kindCIMD, id, s.cfg.Now()); err != nil && s.cfg.Throttle != nil {
			src := auth.ClientAddress(r)
			if _, blocked := s.cfg.Throttle.Blocked(src); blocked {
				return Client{}, errors.New("too many sign-in attempts from this address; wait a little and try again")
			}
			s.cfg.Throttle.Fail(src)
		}
		c, err := s.metadataDocument(r.Context(), id)
		if err != nil {
			s.cfg.Logger.Info("client metadata document refused", "client_id", auth.Clip(id, 200), "reason", err.Error())
			return Client{}, fmt.Errorf("this application's metadata document cannot be used: %w", err)
		}
		return c, nil
	}
	st, err := s.cfg.Store.GetState(r.Context(), kindClient, id, s.cfg.Now())
	var c Client
	if err != nil || json.Unmarshal(st.Value, &c) != nil {
		return Client{}, errors.New("this application is not registered with this server; it should register itself (dynamic client registration) and try again")
	}
	return c, nil
}

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

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	addr := addressKey(auth.ClientAddress(r))
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
	if err := auth.ValidateScopes(scopes); err != nil {
		fail("invalid_scope", err.Error())
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
	src := auth.ClientAddress(r)
	if s.cfg.Throttle != nil {
		if wait, blocked := s.cfg.Throttle.Blocked(src); blocked {
			w.Header().Set("Retry-After", auth.RetryAfter(wait))
			s.errorPage(w, http.StatusTooManyRequests, "Too many attempts", "Too many wrong codes from this address. Wait a little and try again.")
			return
		}
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
		if s.cfg.Throttle != nil {
			s.cfg.Throttle.Fail(src)
		}
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
				auth.Audit(auth.WithRemoteAddr(r.Context(), auth.ClientAddress(r)), s.cfg.Logger, auth.EventTokenRevoked, "reason", "authorization code reuse", "family", used.Group)
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
				auth.Audit(auth.WithRemoteAddr(r.Context(), auth.ClientAddress(r)), s.cfg.Logger, auth.EventAuthFailed,
					"reason", "refresh token presented by another client", "oauth_client_id", rec.ClientID, "claimed_oauth_client_id", auth.Clip(f.Get("client_id"), 64))
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
		oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
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

func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to string, params url.Values) {
	u, _ := url.Parse(to)
	q := u.Query()
	for k, v := range params {
		if len(v) > 0 && v[0] != "" {
			q.Set(k, v[0])
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redirectError sends an RFC 6749 4.1.2.1 error (with iss, RFC 9207).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, to, state, code, desc string) {
	s.redirect(w, r, to, url.Values{"error": {code}, "error_description": {desc}, "state": {state}, "iss": {s.cfg.Issuer}})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
