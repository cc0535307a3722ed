package oauth

import (
	"html/template"
	"net/http"
	"net/url"
)

// scopeWords says what each scope lets a client do, for people.
var scopeWords = map[string]string{
	"admin":      "administer this server: mint, inspect and revoke tokens",
	"tools:call": "call this server's tools",
}

func describeScope(s string) string {
	if w, ok := scopeWords[s]; ok {
		return w
	}
	return "use the “" + s + "” permission"
}

const pageCSS = `body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:30rem;margin:8vh auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.25rem}
h1{font-size:1.3rem;margin:0 0 .25rem}p.sub{color:#5b6475;margin:0 0 1.25rem}
ul{padding-left:1.2rem;margin:.25rem 0 1.25rem}li{margin:.2rem 0}
.where{font-size:.9rem;color:#5b6475;word-break:break-all;background:#f4f5f7;border-radius:6px;padding:.5rem .75rem;margin-bottom:1.25rem}
label{display:block;font-weight:600;margin-bottom:.35rem}
input[type=text]:focus{outline:none;border-color:#2457d6;box-shadow:0 0 0 3px rgba(36,87,214,.25)}
input[type=text]{box-sizing:border-box;width:100%;font:1.2rem ui-monospace,monospace;letter-spacing:.08em;padding:.6rem .75rem;border:1px solid #c8cdd6;border-radius:8px;text-transform:uppercase}
.err{background:#fdecec;color:#8a1c1c;border-radius:6px;padding:.6rem .75rem;margin-bottom:1rem}
.actions{display:flex;gap:.75rem;margin-top:1.25rem}
button{font:inherit;font-weight:600;border-radius:8px;padding:.6rem 1.1rem;border:1px solid #c8cdd6;background:#fff;cursor:pointer}
button.primary{background:#2457d6;border-color:#2457d6;color:#fff;flex:1}
footer{color:#8a92a3;font-size:.8rem;margin-top:1.5rem}
.alt{border-top:1px solid #e3e6eb;margin-top:1.5rem;padding-top:1rem;color:#5b6475;font-size:.95rem}
.alt button{padding:.2rem .6rem;font-size:.9rem;vertical-align:baseline}
.big{font:700 1.6rem ui-monospace,monospace;letter-spacing:.1em;text-align:center;background:#f4f5f7;border-radius:8px;padding:.75rem}`

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Allow {{.Client}} to connect</title><style>` + pageCSS + `</style></head>
<body><main>
<h1>Allow {{.Client}} to connect?</h1>
<p class="sub">This MCP server is asking you to approve an application.</p>
{{if .Error}}<div class="err" role="alert">{{.Error}}</div>{{end}}
<p>It will be able to:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{else}}<li>use what your admin's enrollment code allows</li>{{end}}</ul>
<div class="where">After you approve, you go back to <strong>{{.RedirectHost}}</strong></div>
<form method="post" action="/authorize">
<input type="hidden" name="request" value="{{.Request}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="code">Enrollment code from your admin</label>
<input id="code" type="text" name="enrollment_code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" placeholder="XXXXX-XXXXX" required autofocus>
<div class="actions"><button class="primary" type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button></div>
<p class="alt">No code? Ask your admin to approve request <strong>{{.ShortID}}</strong> (for example by telling their assistant
“approve request {{.ShortID}}”), then <button type="submit" formmethod="get" formaction="/authorize/wait" formnovalidate>wait for approval</button></p>
</form>
<footer>Request {{.ShortID}} · mcpauth</footer>
</main></body></html>`))

var waitTmpl = template.Must(template.New("wait").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Waiting for approval</title><style>` + pageCSS + `</style></head>
<body><main><h1>Waiting for your admin</h1>
<p class="sub">{{.Client}} is waiting to be approved. Ask your admin to approve this request:</p>
<p class="big">{{.ShortID}}</p>
<p class="sub">This page checks again every few seconds and continues by itself.</p>
<footer>mcpauth</footer></main></body></html>`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title><style>` + pageCSS + `</style></head>
<body><main><h1>{{.Title}}</h1><p class="sub">{{.Message}}</p><footer>mcpauth</footer></main></body></html>`))

// pageHeaders: no framing, no external anything, forms only to ourselves
// and (after approval) the client's redirect.
func pageHeaders(w http.ResponseWriter, formTarget string) {
	h := w.Header()
	csp := "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if formTarget != "" {
		csp += " " + formTarget
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" with the form post, which the Origin guard refuses
	// (a headless-browser test found it). The client still gets no
	// Referer on the redirect back.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

func (s *Server) consentPage(w http.ResponseWriter, status int, id string, req authRequest, errMsg string) {
	u, _ := url.Parse(req.RedirectURI)
	origin := ""
	host := req.RedirectURI
	if u != nil && u.Host != "" {
		origin = u.Scheme + "://" + u.Host
		host = u.Host
	}
	name := req.ClientName
	if name == "" {
		name = "An application"
	}
	var scopes []string
	for _, sc := range req.Scopes {
		scopes = append(scopes, describeScope(sc))
	}
	pageHeaders(w, origin)
	w.WriteHeader(status)
	_ = consentTmpl.Execute(w, map[string]any{
		"Client": name, "Scopes": scopes, "RedirectHost": host, "Request": id, "CSRF": req.CSRF,
		"Error": errMsg, "ShortID": ShortID(id),
	})
}

func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	pageHeaders(w, "")
	w.WriteHeader(status)
	_ = errorTmpl.Execute(w, map[string]string{"Title": title, "Message": msg})
}
