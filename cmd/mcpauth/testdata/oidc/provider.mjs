// A real OpenID provider (oidc-provider, pinned in package-lock.json) for
// the trusted-issuer tests: it issues RFC 9068 JWT access tokens for the
// resource it is asked for (resource indicators) with the client
// credentials grant, and to a public client signing a user in with the
// authorization code grant and PKCE (its development login and consent
// forms accept any login).
//
// Environment: PORT (0: any free port), RESOURCE (the default resource),
// KID (the signing key's id; a fresh P-256 key is generated on every
// start, so restarting with another KID rotates the keys).
// It prints one JSON line, {"issuer": …, "kid": …}, once it listens, and
// runs until killed.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const resource = process.env.RESOURCE;
const kid = process.env.KID || 'k1';
const secret = 'oidc-test-client-secret-0123456789';

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };

const client = (id) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  id_token_signed_response_alg: 'ES256',
});

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [client('reader'), client('ops'), client('nobody'), client('short'), {
      // An MCP client signing its user in: authorization code + PKCE.
      client_id: 'mcp-app',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      id_token_signed_response_alg: 'ES256',
    }],
    jwks: { keys: [jwk] },
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator, c) => ({
          scope: 'crm:read mcp-admin',
          audience: indicator,
          accessTokenTTL: c.clientId === 'short' ? 1 : 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, kid })}\n`);
});
