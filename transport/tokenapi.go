package transport

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/mcpauth/mcpauth/auth"
	"github.com/mcpauth/mcpauth/auth/bearer"
	"github.com/mcpauth/mcpauth/auth/registry"
	"github.com/mcpauth/mcpauth/internal/args"
)

// TokenAPIConfig configures the HTTP token endpoint of the production
// setup document (and the token guide's spelling of it).
type TokenAPIConfig struct {
	// APIKey guards the endpoint (X-API-Key or X-Admin-Key). The
	// endpoint is not served when it is empty.
	APIKey string
	// Minter mints through the same policy and registry as the tools.
	Minter auth.Minter
	// Verifier, when set, also lets an admin Bearer token call the
	// endpoint.
	Verifier bearer.TokenVerifier
	// DefaultExpiry applies when the body has no expires_in.
	DefaultExpiry auth.Expiry
	Logger        *slog.Logger
}

// APIKeySubject is the identity of an API-key caller (recorded as
// issued_by), reserved so no OAuth client is given it by its name.
const APIKeySubject = "api-key"

// apiKeyIdentity is the caller recorded as issued_by for API-key mints.
func apiKeyIdentity() *auth.Claims {
	c := &auth.Claims{Scope: auth.Scopes{auth.ScopeAdmin}}
	c.Subject = APIKeySubject
	return c
}

// tokenRequest is the endpoint's body.
type tokenRequest struct {
	ClientID  string
	Scope     []string
	ExpiresIn string
}

// tokenData is the success payload, as the production setup document
// shows it, plus the token's id and expiry time.
type tokenData struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresIn   *int64   `json:"expires_in"`
	Scope       []string `json:"scope"`
	JTI         string   `json:"jti"`
	ClientID    string   `json:"client_id"`
	ExpiresAt   *string  `json:"expires_at"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type apiResponse struct {
	Success bool      `json:"success"`
	Data    any       `json:"data,omitempty"`
	Error   *apiError `json:"error,omitempty"`
}

func writeAPI(w http.ResponseWriter, status int, resp apiResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	writeAPI(w, status, apiResponse{Error: &apiError{Code: code, Message: msg}})
}

// adminCaller authenticates a request to an admin endpoint (the token
// API, introspection) by the API key (X-API-Key or X-Admin-Key, compared
// in constant time with keySum) or an admin Bearer token: the one
// credential check of those endpoints. API keys meet the failure throttle
// before they are compared; Bearer tokens only once they fail, so a valid
// token from a throttled address (a shared NAT) is still served. On
// refusal it answers through writeErr (or the scope challenge) and
// returns false.
func (h *HTTP) adminCaller(w http.ResponseWriter, r *http.Request, keySum [32]byte, verifier bearer.TokenVerifier,
	log *slog.Logger, via string, writeErr func(status int, code, msg string)) (*auth.Claims, bool) {
	src := bearer.ClientAddress(r)
	guard := bearer.Guard{Throttle: h.throttle}
	tooMany := func(retryAfter string) {
		writeErr(http.StatusTooManyRequests, "too_many_requests", "Too many failed attempts from this address; retry after "+retryAfter+"s")
	}
	refuse := func(status int, code, msg string) {
		auth.Audit(auth.WithRemoteAddr(r.Context(), src), log, auth.EventAuthFailed, "path", r.URL.Path, "reason", code)
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcpauth"`+h.resourceMetadataParam())
		writeErr(status, code, msg)
	}
	key := r.Header.Get("X-API-Key")
	if key == "" {
		key = r.Header.Get("X-Admin-Key")
	}
	switch {
	case key != "":
		if secs, blocked := guard.Blocked(w, src); blocked {
			tooMany(secs)
			return nil, false
		}
		sum := sha256.Sum256([]byte(key))
		if subtle.ConstantTimeCompare(sum[:], keySum[:]) != 1 {
			guard.Fail(src)
			refuse(http.StatusUnauthorized, "invalid_api_key", "Invalid API key")
			return nil, false
		}
		return apiKeyIdentity(), true
	case r.Header.Get("Authorization") != "" && verifier != nil:
		tok, err := auth.BearerToken(r)
		var caller *auth.Claims
		if err == nil {
			caller, err = verifier.Verify(tok)
		}
		if err != nil {
			if secs, blocked := guard.Failed(w, src); blocked {
				tooMany(secs)
			} else {
				refuse(http.StatusUnauthorized, "invalid_token", auth.Message(err))
			}
			return nil, false
		}
		if !caller.Scope.IsAdmin() {
			forbid(w, r, h.log, caller, auth.ScopeAdmin, h.resourceMetadata(), via)
			return nil, false
		}
		return caller, true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="mcpauth"`+h.resourceMetadataParam())
	writeErr(http.StatusUnauthorized, "unauthorized", "Authentication required: send X-API-Key (or an admin Bearer token)")
	return nil, false
}

// tokenAPI serves POST /api/v1/mcp/auth/token and POST /api/auth/token.
func (h *HTTP) tokenAPI(cfg TokenAPIConfig) http.Handler {
	t := &tokenEndpoint{h: h, cfg: cfg, keySum: sha256.Sum256([]byte(cfg.APIKey)), log: cfg.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// tokenEndpoint is the token API: who asks, what they ask for, the mint.
type tokenEndpoint struct {
	h      *HTTP
	cfg    TokenAPIConfig
	keySum [sha256.Size]byte
	log    *slog.Logger
}

func (t *tokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src := bearer.ClientAddress(r)
	caller, ok := t.authenticate(w, r)
	if !ok {
		return
	}
	req, expiry, ok := t.readRequest(w, r)
	if !ok {
		return
	}
	tok, err := t.cfg.Minter.Issue(auth.WithRemoteAddr(r.Context(), src), auth.IssueRequest{
		ClientID: req.ClientID, Expiry: expiry, Scopes: req.Scope, Caller: caller, Via: "token_api"})
	if err != nil {
		status, code := mintErrorStatus(err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeAPIError(w, status, code, auth.Message(err))
		return
	}
	writeAPI(w, http.StatusOK, apiResponse{Success: true, Data: newTokenData(tok)})
}

// authenticate finds who is asking: the API key or an admin Bearer token
// (adminCaller, shared with introspection). When it reports false the
// refusal has been written.
func (t *tokenEndpoint) authenticate(w http.ResponseWriter, r *http.Request) (*auth.Claims, bool) {
	return t.h.adminCaller(w, r, t.keySum, t.cfg.Verifier, t.log, "token_api", func(status int, code, msg string) {
		writeAPIError(w, status, code, msg)
	})
}

// readRequest reads and checks the body and its expiry. When it reports
// false the refusal has been written.
func (t *tokenEndpoint) readRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, auth.Expiry, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return tokenRequest{}, auth.Expiry{}, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_request", "Cannot read the request body")
		return tokenRequest{}, auth.Expiry{}, false
	}
	if len(body) > 64<<10 {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body is larger than 64 KiB")
		return tokenRequest{}, auth.Expiry{}, false
	}
	req, err := parseTokenRequest(body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return tokenRequest{}, auth.Expiry{}, false
	}
	expiry := t.cfg.DefaultExpiry
	if req.ExpiresIn != "" {
		if expiry, err = auth.ParseExpiry(req.ExpiresIn); err != nil {
			writeAPIError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return tokenRequest{}, auth.Expiry{}, false
		}
	}
	return req, expiry, true
}

// newTokenData is the success payload of a minted token.
func newTokenData(tok auth.IssuedToken) tokenData {
	data := tokenData{
		AccessToken: tok.Token, TokenType: "Bearer", Scope: append([]string{}, tok.Scopes...),
		JTI: tok.JTI, ClientID: tok.ClientID,
	}
	if !tok.ExpiresAt.IsZero() {
		secs := int64(tok.ExpiresAt.Sub(tok.IssuedAt) / time.Second)
		at := tok.ExpiresAt.UTC().Format(time.RFC3339)
		data.ExpiresIn, data.ExpiresAt = &secs, &at
	}
	return data
}

func parseTokenRequest(body []byte) (tokenRequest, error) {
	a, err := args.Decode(body, "client_id", "scope", "expires_in")
	if err != nil {
		return tokenRequest{}, err
	}
	var req tokenRequest
	id, ok, err := a.Str("client_id")
	if err != nil {
		return req, err
	}
	if !ok {
		return req, errors.New(`"client_id" is required`)
	}
	req.ClientID = id
	if req.Scope, err = a.Strs("scope"); err != nil {
		return req, err
	}
	if req.ExpiresIn, _, err = a.Str("expires_in"); err != nil {
		return req, err
	}
	return req, nil
}

// mintErrorStatus maps a policy refusal to a status and error code.
func mintErrorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, auth.ErrClientNotAllowed):
		return http.StatusForbidden, "client_not_allowed"
	case errors.Is(err, auth.ErrScopeNotHeld):
		return http.StatusForbidden, "insufficient_scope"
	case errors.Is(err, registry.ErrBusy):
		return http.StatusServiceUnavailable, "registry_busy"
	case errors.Is(err, registry.ErrFull):
		return http.StatusServiceUnavailable, "registry_full"
	case errors.Is(err, auth.ErrRecordFailed):
		return http.StatusServiceUnavailable, "registry_unavailable"
	default:
		return http.StatusBadRequest, "invalid_request"
	}
}
