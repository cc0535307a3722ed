// Verifies a token with the jose package, knowing nothing of the server
// but its JWKS URL and issuer: the check a resource server written in
// JavaScript would make.
//
//   MCP_TOKEN=<jwt> node verify.mjs <jwks-url> <issuer> <alg>
//
// Prints one JSON line {"kid", "alg", "sub", "scope"}; exit 1 with the
// reason on stderr when the token does not verify.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksURL, issuer, alg] = process.argv.slice(2);
const token = process.env.MCP_TOKEN;
if (!jwksURL || !issuer || !alg || !token) {
  console.error("usage: MCP_TOKEN=<jwt> node verify.mjs <jwks-url> <issuer> <alg>");
  process.exit(1);
}
try {
  const jwks = createRemoteJWKSet(new URL(jwksURL));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, algorithms: [alg] });
  console.log(JSON.stringify({ kid: protectedHeader.kid, alg: protectedHeader.alg, sub: payload.sub, scope: payload.scope }));
} catch (err) {
  console.error(`${err.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
