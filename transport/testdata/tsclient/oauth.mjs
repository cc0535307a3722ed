// OAuth interop test client for mcpauth, built on the official MCP
// TypeScript SDK's own OAuth support (OAuthClientProvider + the Streamable
// HTTP transport's authProvider).
//
// Usage: ENROLLMENT_CODE=<code> node oauth.mjs <mcp-url>
//
// The SDK does discovery (401 -> protected resource metadata -> authorization
// server metadata), dynamic client registration, PKCE and the token
// exchange. This script plays the user: in redirectToAuthorization it loads
// the consent page, types the enrollment code, approves, and takes the code
// from the 302 to the redirect URI. Then it lets the SDK finish the sign-in
// (transport.finishAuth), connects with a fresh transport, lists tools, calls
// whoami, and forces the SDK's refresh path by making the stored access token
// stale: the next request gets a 401, the SDK refreshes with the refresh token
// and retries.
//
// Prints exactly one JSON line to stdout:
//   {"tools": [...], "whoami": <structuredContent>, "accessToken": "...",
//    "refreshedAccessToken": "...", "refreshed": true|false,
//    "whoamiAfterRefresh": <structuredContent>,
//    "authorize": {"resource": ..., "scope": ..., "redirect_uri": ...},
//    "registration": {...request body...}, "tokenRequests": [{grant_type, resource, scope}, ...]}
// Exit codes: 0 success, 1 error (message on stderr), 2 overall timeout (20s).
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { run } from './run.mjs';

// A free loopback port for the redirect URI. Nothing listens on it: the
// script reads the redirect's Location instead of following it.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function hiddenInput(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!m) {
    throw new Error(`consent page has no hidden "${name}" input`);
  }
  return m[1];
}

// What the SDK sent to the authorization server, for the test to check.
const seen = { registration: null, tokenRequests: [] };

// recordingFetch is given to the transport; the SDK uses it for discovery,
// registration and token requests as well as MCP traffic.
async function recordingFetch(input, init) {
  const u = new URL(input instanceof Request ? input.url : String(input));
  if (init?.method === 'POST' && u.pathname === '/register' && typeof init.body === 'string') {
    seen.registration = JSON.parse(init.body);
  }
  if (init?.method === 'POST' && u.pathname === '/token' && init.body) {
    const p = new URLSearchParams(String(init.body));
    seen.tokenRequests.push({
      grant_type: p.get('grant_type'),
      resource: p.get('resource'),
      scope: p.get('scope'),
      client_id: p.get('client_id'),
    });
  }
  return fetch(input, init);
}

class ConsentingProvider {
  constructor(redirectUrl, enrollmentCode) {
    this._redirectUrl = redirectUrl;
    this._enrollmentCode = enrollmentCode;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._state = undefined;
    this.authorizationCode = undefined;
    this.authorizeParams = undefined;
    this.tokenSaves = 0;
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'mcpauth TypeScript SDK test',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      // Not in the SDK's schema, but registerClient() posts the metadata
      // object as is, so it reaches the server.
      application_type: 'native',
    };
  }

  state() {
    this._state = randomBytes(16).toString('hex');
    return this._state;
  }

  clientInformation() {
    return this._clientInformation;
  }

  saveClientInformation(info) {
    this._clientInformation = info;
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokenSaves++;
  }

  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }

  codeVerifier() {
    if (!this._codeVerifier) {
      throw new Error('no code verifier saved');
    }
    return this._codeVerifier;
  }

  // The "user agent": load the consent page, enter the code, approve, and
  // catch the redirect back to us.
  async redirectToAuthorization(authorizationUrl) {
    this.authorizeParams = {
      resource: authorizationUrl.searchParams.get('resource'),
      scope: authorizationUrl.searchParams.get('scope'),
      redirect_uri: authorizationUrl.searchParams.get('redirect_uri'),
      code_challenge_method: authorizationUrl.searchParams.get('code_challenge_method'),
    };
    const page = await fetch(authorizationUrl, { redirect: 'manual' });
    const html = await page.text();
    if (page.status !== 200) {
      throw new Error(`consent page: ${page.status} ${page.headers.get('location') ?? html.slice(0, 300)}`);
    }
    const form = new URLSearchParams({
      request: hiddenInput(html, 'request'),
      csrf: hiddenInput(html, 'csrf'),
      enrollment_code: this._enrollmentCode,
      action: 'approve',
    });
    const consent = new URL('/authorize', authorizationUrl);
    const resp = await fetch(consent, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      redirect: 'manual',
    });
    const body = await resp.text();
    if (resp.status !== 302) {
      const why = body.match(/role="alert">([^<]*)</);
      throw new Error(`consent refused: ${resp.status}${why ? ': ' + why[1] : ''}`);
    }
    const loc = new URL(resp.headers.get('location'));
    if (`${loc.origin}${loc.pathname}` !== this._redirectUrl) {
      throw new Error(`redirected to ${loc.origin}${loc.pathname}, not ${this._redirectUrl}`);
    }
    if (loc.searchParams.get('error')) {
      throw new Error(`authorization error: ${loc.searchParams.get('error')}: ${loc.searchParams.get('error_description')}`);
    }
    if (!loc.searchParams.get('iss')) {
      throw new Error('authorization response has no iss (RFC 9207)');
    }
    if (loc.searchParams.get('iss') !== authorizationUrl.origin) {
      throw new Error(`authorization response iss ${loc.searchParams.get('iss')}, want ${authorizationUrl.origin}`);
    }
    if (loc.searchParams.get('state') !== this._state) {
      throw new Error(`state mismatch: ${loc.searchParams.get('state')}`);
    }
    const code = loc.searchParams.get('code');
    if (!code) {
      throw new Error('authorization response has no code');
    }
    this.authorizationCode = code;
  }
}

async function main() {
  const [urlArg] = process.argv.slice(2);
  if (!urlArg) {
    throw new Error('usage: ENROLLMENT_CODE=<code> node oauth.mjs <mcp-url>');
  }
  const enrollmentCode = process.env.ENROLLMENT_CODE ?? '';
  const url = new URL(urlArg);
  const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
  const provider = new ConsentingProvider(redirectUrl, enrollmentCode);

  // 1. The first connect: 401 -> discovery -> registration -> authorization
  //    (our consent) -> the SDK throws UnauthorizedError ('REDIRECT').
  const first = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: recordingFetch });
  try {
    await new Client({ name: 'mcpauth-ts-oauth', version: '0.0.0' }).connect(first);
    throw new Error('connected without signing in');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) {
      throw err;
    }
  }
  if (!provider.authorizationCode) {
    throw new Error('the SDK did not start the authorization flow');
  }
  // 2. Back from the "browser": the SDK exchanges the code (PKCE).
  await first.finishAuth(provider.authorizationCode);
  await first.close();
  const accessToken = provider.tokens()?.access_token;
  if (!accessToken || !provider.tokens()?.refresh_token) {
    throw new Error(`no tokens after finishAuth: ${JSON.stringify(provider.tokens())}`);
  }

  // 3. Connect again, signed in.
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'mcpauth-ts-oauth', version: '0.0.0' });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  if (whoami.isError) {
    throw new Error(`whoami failed: ${JSON.stringify(whoami.content)}`);
  }

  // 4. Force the SDK's refresh path: the stored access token goes stale, so
  //    the next request gets a 401; the transport calls auth(), which uses
  //    the refresh token, saves the new tokens and retries the request.
  const before = provider.tokens();
  provider._tokens = { ...before, access_token: 'stale-' + randomBytes(16).toString('hex') };
  const whoamiAfterRefresh = await client.callTool({ name: 'whoami', arguments: {} });
  const after = provider.tokens();
  const refreshed =
    !whoamiAfterRefresh.isError &&
    seen.tokenRequests.some((r) => r.grant_type === 'refresh_token') &&
    !!after?.access_token &&
    after.access_token !== accessToken &&
    !after.access_token.startsWith('stale-') &&
    after.refresh_token !== before.refresh_token;

  // 5. Revoke (RFC 7009) the current refresh token, which revokes its
  //    family's access token too, then call with that access token alone
  //    (no authProvider, so nothing can sign in again): it must be refused.
  const revokeResp = await fetch(new URL('/revoke', url), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: after.refresh_token, client_id: provider.clientInformation()?.client_id ?? '' }),
  });
  let refusedAfterRevoke = false;
  try {
    const bare = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${after.access_token}` } } });
    const c2 = new Client({ name: 'mcpauth-ts-oauth-after-revoke', version: '0.0.0' });
    await c2.connect(bare);
    await c2.callTool({ name: 'whoami', arguments: {} });
    await c2.close();
  } catch {
    refusedAfterRevoke = true;
  }

  const out = JSON.stringify({
    revokeStatus: revokeResp.status,
    refusedAfterRevoke,
    tools,
    whoami: whoami.structuredContent ?? null,
    accessToken,
    refreshedAccessToken: after?.access_token ?? null,
    refreshed,
    whoamiAfterRefresh: whoamiAfterRefresh.structuredContent ?? null,
    authorize: provider.authorizeParams,
    registration: seen.registration,
    tokenRequests: seen.tokenRequests,
  });
  await new Promise((resolve) => process.stdout.write(out + '\n', resolve));

  try {
    await client.close();
  } catch {
    // ignore close errors; the result has already been printed
  }
}

run(main, 20_000);
