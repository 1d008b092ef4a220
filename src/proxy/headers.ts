import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { connectionTokens, HOP_BY_HOP_HEADERS } from '../contract/index.js'

// Cluster headers (cluster/protocol.ts) carry the cluster secret between gateways: never to a worker,
// and never from one (a plugin must not be able to answer as a gateway, e.g. "not the owner").
const INTERNAL_PREFIX = 'x-plugin-gateway-'

/** Copies end-to-end headers only; `extra` overrides (x-forwarded-*, x-request-id, cluster headers to a peer). */
export function forwardHeaders(
  incoming: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
  extra: Record<string, string>,
): Record<string, string | string[]> {
  const named = connectionTokens(incoming.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || named.has(name) || name.startsWith(INTERNAL_PREFIX)) continue
    out[name] = value
  }
  return Object.assign(out, extra)
}

export function responseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  extra: Record<string, string>,
): OutgoingHttpHeaders {
  const named = connectionTokens(upstream.connection)
  const out: OutgoingHttpHeaders = {}
  for (const name in upstream) {
    const value = upstream[name]
    if (
      value === undefined ||
      HOP_BY_HOP_HEADERS.has(name) ||
      named.has(name) ||
      name === 'server-timing' ||
      name.startsWith(INTERNAL_PREFIX)
    )
      continue
    out[name] = value
  }
  return Object.assign(out, extra)
}
