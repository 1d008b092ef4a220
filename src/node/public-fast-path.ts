import { randomUUID } from 'node:crypto'
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Logger } from '../core/index.js'
import type { Metrics } from '../observability/index.js'
import type { ForwardTarget, NodeProxy } from '../proxy/index.js'
import type { PublicExchange, RequestUrl, ServePublic } from '../routes/index.js'
import { errorBody, logFailure, requestIdFor, toGatewayError } from '../routes/index.js'
import type { StartTiming } from '../workers/index.js'

export interface PublicFastPathDeps {
  servePublic: ServePublic
  proxy: NodeProxy
  log: Logger
  /** Observed as the app's requestMetrics middleware does; absent: none. */
  metrics?: Metrics
}

// A request target the proxy rules can read as written: `/orgs/<id>/plugins/<id>`, then a path and query
// of characters WHATWG URL parsing keeps as they are. Anything else (escapes in the path, dot-segments,
// quotes, backslashes, a fragment, non-ASCII) is left to the Hono app, which parses it with new URL().
const PLAIN_TARGET = /^\/orgs\/([a-z0-9][a-z0-9_-]{0,63})\/plugins\/([a-z0-9][a-z0-9_-]{0,63})(?:[/?][\w\-.~!$&()*+,;=:@/?%]*)?$/

/**
 * The Node entry's public path without a Hono context: the same rules (routes/public.ts servePublic,
 * with the same admission and forwarder), request id, metrics, debug line and error answers as the
 * Hono app gives the same request, for less CPU per request (BENCHMARKS.md). Returns false for a
 * request it leaves to the Hono app.
 */
export function createPublicFastPath(deps: PublicFastPathDeps): (incoming: IncomingMessage, outgoing: ServerResponse) => boolean {
  const { servePublic, proxy, log, metrics } = deps
  const isLogging = log.isLevelEnabled?.('debug') ?? true

  return function servePublicOnNode(incoming, outgoing) {
    const target = incoming.url ?? ''
    const host = incoming.headers.host
    if (host === undefined || !target.startsWith('/orgs/')) return false
    const ids = PLAIN_TARGET.exec(target)
    if (ids === null) return false
    const queryAt = target.indexOf('?')
    const pathname = queryAt < 0 ? target : target.slice(0, queryAt)
    if (pathname.includes('/.') || pathname.includes('%')) return false

    const startedAt = performance.now()
    const url: RequestUrl = {
      protocol: 'http:',
      host,
      pathname,
      search: queryAt < 0 || queryAt === target.length - 1 ? '' : target.slice(queryAt),
    }
    const requestId = requestIdFor(headerOf(incoming, 'x-request-id'), randomUUID)
    const ex = new NodeExchange(incoming, outgoing, url, requestId, proxy)
    servePublic(ex, ids[1] as string, ids[2] as string).then(
      () => observe(ex, startedAt, outgoing.statusCode),
      (err: unknown) => {
        const e = toGatewayError(err)
        logFailure(log, e, err, pathname)
        if (!outgoing.headersSent && !outgoing.destroyed) {
          const body = JSON.stringify(errorBody(e))
          const headers: OutgoingHttpHeaders = { 'x-request-id': requestId, ...e.headers, 'content-type': 'application/json' }
          if (e.retryAfterSeconds !== undefined) headers['retry-after'] = String(e.retryAfterSeconds)
          headers['content-length'] = Buffer.byteLength(body)
          outgoing.writeHead(e.status, headers).end(body)
        }
        observe(ex, startedAt, e.status)
      },
    )
    return true
  }

  /** `status`: what was answered, or for a client that left, what would have been (499). */
  function observe(ex: NodeExchange, startedAt: number, status: number): void {
    const durationMs = performance.now() - startedAt
    metrics?.observeRequest({ route: 'proxy', status, durationMs, cold: ex.cold ? { queueMs: ex.cold.queueMs } : null })
    if (isLogging) {
      const ms = Math.round(durationMs * 10) / 10
      log.debug({ method: ex.method, path: ex.url.pathname, status, ms, requestId: ex.requestId }, 'request')
    }
  }
}

function headerOf(incoming: IncomingMessage, name: string): string | undefined {
  const value = incoming.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

/** A public request on Node's own request and response. */
class NodeExchange implements PublicExchange<void> {
  cold: StartTiming | null = null

  constructor(
    readonly incoming: IncomingMessage,
    readonly outgoing: ServerResponse,
    readonly url: RequestUrl,
    readonly requestId: string,
    private readonly proxy: NodeProxy,
  ) {}

  get method(): string {
    return this.incoming.method ?? 'GET'
  }

  header(name: string): string | undefined {
    return headerOf(this.incoming, name)
  }

  clientAddress(): string | undefined {
    return this.incoming.socket.remoteAddress
  }

  clientSignal(): AbortSignal {
    return this.proxy.clientSignal(this.outgoing)
  }

  forward(target: ForwardTarget): Promise<void> {
    return this.proxy.forward(this.incoming, this.outgoing, target)
  }
}
