// Peer server for mcpauth's load benchmark (bench/): what a user would
// otherwise pick. The official MCP TypeScript SDK (pinned in package.json)
// serves a trivial whoami tool over Streamable HTTP (/mcp, sessions, JSON
// responses like mcp-go's default) and legacy SSE (/sse + /message), every
// endpoint behind the SDK's requireBearerAuth middleware. Its
// verifyAccessToken checks the same HS256 tokens mcpauth mints, with the
// same rules (alg pinned, iss, exp/nbf with 30s leeway, sub and jti
// required, a 1,000-entry revocation set), using node:crypto createHmac +
// timingSafeEqual.
//
// Usage: MCP_JWT_SECRET=... PORT=... [MCP_ISSUER=mcpauth] node server.mjs
// Listens on 127.0.0.1 only; prints "listening <port>" when ready and exits
// on SIGTERM/SIGINT or when stdin closes (the harness holds it open).
import { createHmac, randomUUID, timingSafeEqual, randomBytes } from 'node:crypto';
import express from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const secret = Buffer.from(process.env.MCP_JWT_SECRET ?? '', 'utf8');
if (secret.length < 32) {
  process.stderr.write('MCP_JWT_SECRET must be at least 32 bytes\n');
  process.exit(1);
}
const issuer = process.env.MCP_ISSUER || 'mcpauth';
const port = Number(process.env.PORT || 0);
const LEEWAY = 30;
const MAX_TOKEN_LEN = 8 << 10;

// Same revocation-set size as the Go benchmarks: 1,000 revoked jtis.
const revoked = new Set();
for (let i = 0; i < 1000; i++) revoked.add(randomBytes(16).toString('hex'));

const verifier = {
  // OAuthTokenVerifier: returns AuthInfo (expiresAt in seconds) or throws.
  async verifyAccessToken(token) {
    if (token.length > MAX_TOKEN_LEN) throw new InvalidTokenError('Invalid token: too large');
    const parts = token.split('.');
    if (parts.length !== 3) throw new InvalidTokenError('Invalid token: malformed');
    const [h, p, s] = parts;
    let header;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    } catch {
      throw new InvalidTokenError('Invalid token: malformed');
    }
    if (header.alg !== 'HS256') throw new InvalidTokenError('Invalid token: signing algorithm not accepted');
    const want = createHmac('sha256', secret).update(h + '.' + p).digest();
    const got = Buffer.from(s, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new InvalidTokenError('Invalid token: signature does not match');
    }
    let c;
    try {
      c = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    } catch {
      throw new InvalidTokenError('Invalid token: malformed');
    }
    const now = Date.now() / 1000;
    if (c.iss !== issuer) throw new InvalidTokenError('Invalid token: wrong issuer');
    if (typeof c.exp !== 'number') throw new InvalidTokenError('Invalid token: missing required claim');
    if (now > c.exp + LEEWAY) throw new InvalidTokenError('Token has expired');
    if (typeof c.nbf === 'number' && now < c.nbf - LEEWAY) throw new InvalidTokenError('Token is not valid yet');
    if (typeof c.iat === 'number' && now < c.iat - LEEWAY) throw new InvalidTokenError('Token is not valid yet');
    if (!c.sub) throw new InvalidTokenError('Invalid token: missing sub claim');
    if (!c.jti) throw new InvalidTokenError('Invalid token: missing jti claim');
    if (revoked.has(c.jti)) throw new InvalidTokenError('Token has been revoked');
    const scopes = Array.isArray(c.scope) ? c.scope : typeof c.scope === 'string' ? c.scope.split(' ').filter(Boolean) : [];
    // requireBearerAuth refuses AuthInfo without a numeric expiresAt, and
    // compares it with now without leeway.
    return { token, clientId: c.sub, scopes, expiresAt: c.exp + LEEWAY, extra: { jti: c.jti, iss: c.iss } };
  },
};

function newServer() {
  const server = new McpServer({ name: 'ts-peer', version: '1.32.2' }, { capabilities: { tools: {} } });
  server.registerTool(
    'whoami',
    {
      description: 'Show the identity of the token this session uses: client id, scopes and expiry.',
      annotations: { readOnlyHint: true, idempotentHint: true, destructiveHint: false, openWorldHint: false },
    },
    async (extra) => {
      const a = extra.authInfo;
      const exp = new Date((a.expiresAt - LEEWAY) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const res = {
        client_id: a.clientId,
        scopes: a.scopes,
        jti: a.extra?.jti,
        issuer: a.extra?.iss,
        expires_at: exp,
        admin: a.scopes.includes('admin'),
      };
      return {
        content: [{ type: 'text', text: `You are "${a.clientId}" with scopes [${a.scopes.join(' ')}]; your token expires: ${exp}.` }],
        structuredContent: res,
      };
    },
  );
  return server;
}

const app = express();
app.use(express.json());
const bearer = requireBearerAuth({ verifier });

// Streamable HTTP, one transport + server per session (the SDK's
// documented stateful pattern), JSON responses.
const streamable = new Map();
app.post('/mcp', bearer, async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? streamable.get(sid) : undefined;
  if (!transport) {
    if (sid || !isInitializeRequest(req.body)) {
      res.status(sid ? 404 : 400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'No valid session' }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => streamable.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) streamable.delete(transport.sessionId);
    };
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});
const sessionRequest = async (req, res) => {
  const transport = streamable.get(req.headers['mcp-session-id']);
  if (!transport) {
    res.status(404).end();
    return;
  }
  await transport.handleRequest(req, res);
};
app.get('/mcp', bearer, sessionRequest);
app.delete('/mcp', bearer, sessionRequest);

// Legacy SSE (deprecated in the SDK, still shipped).
const sse = new Map();
app.get('/sse', bearer, async (req, res) => {
  const transport = new SSEServerTransport('/message', res);
  sse.set(transport.sessionId, transport);
  res.on('close', () => sse.delete(transport.sessionId));
  await newServer().connect(transport);
});
app.post('/message', bearer, async (req, res) => {
  const transport = sse.get(String(req.query.sessionId ?? ''));
  if (!transport) {
    res.status(404).end();
    return;
  }
  await transport.handlePostMessage(req, res, req.body);
});

app.get('/health', (_req, res) => res.json({ status: 'ok' }));

const httpServer = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
const stop = () => {
  httpServer.closeAllConnections?.();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
