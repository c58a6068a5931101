// Runs the graphql-http server audits (the GraphQL-over-HTTP conformance suite) against a running
// gateway. Usage: npm install graphql-http@1 graphql@16 && node scripts/graphql-http-audit.mjs URL
import { auditServer } from 'graphql-http';
const url = process.argv[2] ?? 'http://127.0.0.1:18081/graphql';
const results = await auditServer({ url, fetchFn: fetch });
let counts = { ok: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status]++;
  if (r.status !== 'ok') console.log(`${r.status.toUpperCase()} ${r.name}: ${r.reason}`);
}
console.log(JSON.stringify(counts));
