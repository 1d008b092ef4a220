import { connectionTokens, HOP_BY_HOP_HEADERS } from '../contract/index.js'
import { GatewayError } from '../core/index.js'

/** A copy of `headers` without hop-by-hop fields, including those the Connection header names. */
export function endToEndHeaders(headers: Headers): Headers {
  const out = new Headers(headers)
  for (const name of [...HOP_BY_HOP_HEADERS, ...connectionTokens(headers.get('connection'))]) out.delete(name)
  return out
}

export interface ForwardRequest {
  /** Node gateway base URL. */
  origin: string
  /** Path and query as received, the gateway prefix included (the Node gateway routes it again). */
  pathAndQuery: string
  request: Request
  /** Set on the upstream request after the copy: x-forwarded-*, x-request-id. */
  headers: Record<string, string>
  fetch: typeof fetch
}

/** Streams the request to the Node gateway and its answer back, both bodies untouched. */
export async function forwardToGateway(f: ForwardRequest): Promise<Response> {
  const headers = endToEndHeaders(f.request.headers)
  for (const [name, value] of Object.entries(f.headers)) headers.set(name, value)
  const hasBody = f.request.method !== 'GET' && f.request.method !== 'HEAD' && f.request.body !== null
  let upstream: Response
  try {
    upstream = await f.fetch(f.origin + f.pathAndQuery, {
      method: f.request.method,
      headers,
      body: hasBody ? f.request.body : null,
      // A plugin's redirect is the client's to follow, not ours.
      redirect: 'manual',
    })
  } catch (err) {
    throw new GatewayError('UPSTREAM_ERROR', 502, 'the Node gateway for this plugin is unreachable', { cause: err, retryAfterSeconds: 1 })
  }
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: endToEndHeaders(upstream.headers),
  })
}
