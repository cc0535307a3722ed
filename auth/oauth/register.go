package oauth

import (
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
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/internal/untrusted"
)

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

// maxClientName bounds a client's self-chosen name (client_name), which
// the consent page and list_pending_authorizations show to the admin; it
// is also made one line (untrusted.Text), so that it cannot pose as more
// requests, or as instructions, in the list an assistant reads.
const maxClientName = 100

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	src := bearer.ClientAddress(r)
	// Registrations count against the same budget as failures: they are
	// cheap to make and each one is stored.
	if _, blocked := (bearer.Guard{Throttle: s.cfg.Throttle}).Failed(w, src); blocked {
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many requests from this address")
		return
	}
	var c Client
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&c); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON client metadata document")
		return
	}
	// The server names the client and stamps the time, whatever the
	// body says.
	c.ClientID, c.ClientIDIssuedAt = "mcp-"+randomID(), s.cfg.Now().Unix()
	c.ClientName = untrusted.Text(c.ClientName, maxClientName)
	fillClientDefaults(&c)
	if err := s.checkClient(c); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", err.Error())
		return
	}
	val, _ := json.Marshal(c)
	s.registerMu.Lock()
	defer s.registerMu.Unlock()
	n, err := s.cfg.Store.CountState(r.Context(), kindClient, s.cfg.Now())
	if err != nil {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "cannot store the registration")
		return
	}
	if n >= s.cfg.MaxClients {
		auth.Audit(auth.WithRemoteAddr(r.Context(), src), s.cfg.Logger, "oauth.register_refused", "via", "oauth", "limit", "clients_total", "registered", n)
		w.Header().Set("Retry-After", "3600")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			fmt.Sprintf("this server keeps at most %d registered clients and has no room for another; try again later, or use a client id metadata document", s.cfg.MaxClients))
		return
	}
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
			return fmt.Errorf("grant type %q is not supported", untrusted.Clip(g, 40))
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
			return fmt.Errorf("redirect URI %q is not an absolute URI without a fragment", untrusted.Clip(ru, 80))
		}
		loopback := isLoopbackHTTP(u)
		switch {
		case u.Scheme == "https":
		case loopback && (c.ApplicationType == "native" || s.cfg.AllowLoopbackRedirects):
		case c.ApplicationType == "native" && strings.Contains(u.Scheme, "."): // private-use scheme, e.g. com.example.app:/cb
		default:
			return fmt.Errorf("redirect URI %q must be https (loopback http only for native clients)", untrusted.Clip(ru, 80))
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
		if _, err := s.cfg.Store.GetState(r.Context(), kindCIMD, id, s.cfg.Now()); err != nil {
			if _, blocked := (bearer.Guard{Throttle: s.cfg.Throttle}).Failed(nil, bearer.ClientAddress(r)); blocked {
				return Client{}, errors.New("too many sign-in attempts from this address; wait a little and try again")
			}
		}
		c, err := s.metadataDocument(r.Context(), id)
		if err != nil {
			s.cfg.Logger.Info("client metadata document refused", "client_id", untrusted.Clip(id, 200), "reason", err.Error())
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
