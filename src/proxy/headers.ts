import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

// RFC 9110 §7.6.1: connection-specific fields never cross a proxy. `host` is re-set by undici for
// the worker's origin; the original value travels as x-forwarded-host.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
])

function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (!value) return null
  const joined = Array.isArray(value) ? value.join(',') : value
  return new Set(joined.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean))
}

// Cluster headers (routes/cluster-headers.ts) carry the cluster secret between gateways: never to a worker.
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
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name) || name.startsWith(INTERNAL_PREFIX)) continue
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
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name) || name === 'server-timing') continue
    out[name] = value
  }
  return Object.assign(out, extra)
}
