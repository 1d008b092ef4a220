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

// The handshake of one WebSocket connection: workerd makes its own with the Node gateway, and answers
// the client's itself. The subprotocol (sec-websocket-protocol) is end to end and passes.
const HANDSHAKE_HEADERS = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-accept']

/** workerd's fetch returns the WebSocket of a 101 as `webSocket` (not in the web platform's types). */
interface UpgradedResponse extends Response {
  readonly webSocket?: unknown
}

const isWebSocketUpgrade = (request: Request) =>
  request.method === 'GET' && request.headers.get('upgrade')?.trim().toLowerCase() === 'websocket'

/**
 * Streams the request to the Node gateway and its answer back, both bodies untouched. A WebSocket
 * upgrade goes on as one: workerd upgrades its fetch (to a WebSocket only; any other protocol's
 * `Upgrade` is hop-by-hop and dropped) and joins the two sockets when the answer is a 101.
 */
export async function forwardToGateway(f: ForwardRequest): Promise<Response> {
  const headers = endToEndHeaders(f.request.headers)
  for (const [name, value] of Object.entries(f.headers)) headers.set(name, value)
  const isWebSocket = isWebSocketUpgrade(f.request)
  if (isWebSocket) {
    for (const name of HANDSHAKE_HEADERS) headers.delete(name)
    headers.set('upgrade', 'websocket')
  }
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
  const { webSocket } = upstream as UpgradedResponse
  if (isWebSocket && webSocket) {
    const switched = endToEndHeaders(upstream.headers)
    for (const name of HANDSHAKE_HEADERS) switched.delete(name)
    // workerd's ResponseInit takes the WebSocket to hand on.
    const init: ResponseInit & { webSocket: unknown } = { status: 101, headers: switched, webSocket }
    return new Response(null, init)
  }
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: endToEndHeaders(upstream.headers),
  })
}
