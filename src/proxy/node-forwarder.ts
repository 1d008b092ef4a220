import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { type Duplex, Transform, type TransformCallback } from 'node:stream'
import type { HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { Context } from 'hono'
import type { Dispatcher } from 'undici'
import { clientClosed, GatewayError } from '../core/index.js'
import { forwardHeaders, responseHeaders } from './headers.js'
import { spliceTunnel } from './tunnel.js'
import { createUpgrades, type Upgrades } from './upgrades.js'
import type { ForwardTarget, Forwarder } from './types.js'

export interface NodeForwarderOptions {
  /** Bound on the wait for the upstream's response headers (or its 101). */
  upstreamTimeoutMs: number
  /** The same to a peer gateway (hop `peer`), whose answer may wait for its cold start first; upstreamTimeoutMs if absent. */
  peerTimeoutMs?: number
  /** Once they are through, the longest a response body or a tunnel may stay silent; 0: no bound. */
  streamIdleTimeoutMs: number
  maxBodyBytes: number
}

/** The forwarder on Node's own request and response: what the Node entry's fast path and the Hono adapter below both use. */
export interface NodeProxy {
  /** Streams incoming to the target and its answer to outgoing; settles at the answer's headers (rejects, coded, without one). */
  forward(incoming: IncomingMessage, outgoing: ServerResponse, target: ForwardTarget): Promise<void>
  /** Aborts when the client goes away before its response is complete; one per response, made on first use. */
  clientSignal(outgoing: ServerResponse): AbortSignal
  /** Connections taken from the Node server's 'upgrade' event: their requests are forwarded with `Upgrade`. */
  upgrades: Upgrades
}

/**
 * Streams the Node request straight into the worker's undici Pool and the answer straight back
 * to the Node response: no Web stream conversion and no buffering, so raw bodies stay byte-identical.
 * An upgrade request (one the Node entry took from its server's 'upgrade' event, upgrades.ts) goes
 * upstream with its `Upgrade`; a 101 turns the exchange into a tunnel (tunnel.ts), any other answer is relayed.
 *
 * The answer goes through undici's dispatch handler API rather than `request()` + `pipeline()`: no
 * body Readable, and no AbortController per request. On Node 20 creating an AbortSignal costs ~9 µs
 * and `pipeline()` aborts its own at the end of every stream, building a DOMException with a stack
 * (~30 µs); together they were the largest avoidable cost of a warm request.
 */
export function createNodeProxy(opts: NodeForwarderOptions): NodeProxy {
  const upgrades = createUpgrades()
  const signals = new WeakMap<ServerResponse, AbortController>()
  function clientSignal(outgoing: ServerResponse): AbortSignal {
    let controller = signals.get(outgoing)
    if (!controller) {
      const created = new AbortController()
      const onClose = () => {
        if (!outgoing.writableFinished) created.abort(clientClosed())
      }
      // Asked for after the client left (a wait that began late): its 'close' has been and gone.
      if (outgoing.closed) onClose()
      else outgoing.once('close', onClose)
      signals.set(outgoing, created)
      controller = created
    }
    return controller.signal
  }

  /**
   * The bytes after an upgrade request's head belong to the new protocol, and they flow only once the
   * upstream has switched: a request body has no place there (Node hands it over unparsed), so one is refused.
   */
  function forwardUpgrade(incoming: IncomingMessage, outgoing: ServerResponse, target: ForwardTarget): Promise<void> {
    if (Number(incoming.headers['content-length'] ?? 0) > 0 || incoming.headers['transfer-encoding'] !== undefined) {
      target.onDone()
      return Promise.reject(new GatewayError('BAD_REQUEST', 400, 'an upgrade request cannot carry a body'))
    }
    return new Promise<void>((resolve, reject) => {
      target.dispatcher.dispatch(
        {
          method: incoming.method as Dispatcher.HttpMethod,
          path: target.path,
          headers: forwardHeaders(incoming.headers, target.requestHeaders),
          upgrade: headerValue(incoming.headers.upgrade),
          headersTimeout: headersTimeoutOf(target, opts),
          bodyTimeout: opts.streamIdleTimeoutMs,
        },
        new ProxyHandler(outgoing, target, opts, resolve, reject),
      )
    })
  }

  return {
    clientSignal,
    upgrades,
    forward(incoming, outgoing, target) {
      const declared = Number(incoming.headers['content-length'] ?? 0)
      if (declared > opts.maxBodyBytes) {
        target.onDone()
        endAfterAnswer(outgoing)
        return Promise.reject(tooLarge(opts.maxBodyBytes))
      }
      if (incoming.headers.upgrade !== undefined && upgrades.isUpgrade(incoming)) return forwardUpgrade(incoming, outgoing, target)
      return new Promise<void>((resolve, reject) => {
        const handler = new ProxyHandler(outgoing, target, opts, resolve, reject)
        target.dispatcher.dispatch(
          {
            method: incoming.method as Dispatcher.HttpMethod,
            path: target.path,
            headers: forwardHeaders(incoming.headers, target.requestHeaders),
            body: requestBody(incoming, opts.maxBodyBytes),
            headersTimeout: headersTimeoutOf(target, opts),
            // Between body chunks, not in all: a long stream (SSE) is never cut for its length.
            bodyTimeout: opts.streamIdleTimeoutMs,
          },
          handler,
        )
      })
    },
  }
}

/**
 * One proxied exchange: writes the upstream status and headers to the client, then each body chunk
 * as it arrives, pausing the upstream while the client's socket is backed up. Settles the forward
 * promise at the response headers (or with the error when there are none), and calls
 * `target.onDone()` exactly once, when the upstream body has ended or failed.
 */
class ProxyHandler implements Dispatcher.DispatchHandler {
  private readonly started = performance.now()
  private controller: Dispatcher.DispatchController | null = null
  private headersSent = false
  private done = false
  private isStallBounded = false

  constructor(
    private readonly outgoing: ServerResponse,
    private readonly target: ForwardTarget,
    private readonly opts: NodeForwarderOptions,
    private readonly resolve: () => void,
    private readonly reject: (err: unknown) => void,
  ) {
    // The client going away aborts the upstream exchange, before or during the body. A response
    // closes once, so `on` (no once-wrapper per request) is enough.
    outgoing.on('close', () => {
      if (!this.done && !outgoing.writableFinished) this.controller?.abort(clientClosed())
    })
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.outgoing.destroyed) controller.abort(clientClosed())
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>): void {
    if (statusCode < 200) {
      this.relayInformational(statusCode, headers)
      return
    }
    const { target } = this
    const refused = target.refuse?.(statusCode, headers)
    if (refused) {
      controller.abort(refused) // onResponseError rejects the forward with it
      return
    }
    const out = responseHeaders(headers, target.responseHeaders)
    out['server-timing'] = serverTiming(target, headers['server-timing'], performance.now() - this.started)
    this.outgoing.writeHead(statusCode, out)
    this.headersSent = true
    this.resolve()
  }

  /**
   * The 1xx answers Node's own server can send, relayed the way it sends them: 102 Processing and
   * 103 Early Hints (with its Link). Others are dropped, and an HTTP/1.0 client gets none (RFC 9110 §15.2).
   * (A 100 never comes: `expect` is not forwarded, Node's server answered it to the client already.)
   */
  private relayInformational(statusCode: number, headers: Record<string, string | string[]>): void {
    const { outgoing } = this
    if (outgoing.req.httpVersionMinor === 0 && outgoing.req.httpVersionMajor === 1) return
    if (statusCode === 102) outgoing.writeProcessing()
    else if (statusCode === 103) {
      // A hint is advisory: one Node refuses to write (a link that is no link) is dropped, not the exchange.
      try {
        outgoing.writeEarlyHints(responseHeaders(headers, {}) as Record<string, string | string[]>)
      } catch {}
    }
  }

  /**
   * The upstream switched protocols: its 101 goes to the client's socket as it came (end-to-end headers,
   * the switch, ours), then the two connections are joined until either closes. The lease becomes a
   * tunnel's (onTunnel) and is released when both connections have closed.
   */
  onRequestUpgrade(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[]>,
    upstream: Duplex,
  ): void {
    const { outgoing, target } = this
    const client = outgoing.socket
    if (client === null || client.destroyed) {
      upstream.destroy()
      this.finish()
      this.reject(clientClosed()) // gone as the switch came: the forward settles all the same
      return
    }
    const out = responseHeaders(headers, target.responseHeaders)
    out['server-timing'] = serverTiming(target, headers['server-timing'], performance.now() - this.started)
    // From here on the socket is the tunnel's: the response object must not see its close as an abort.
    outgoing.detachSocket(client)
    outgoing.statusCode = statusCode // what metrics and the request log report
    this.headersSent = true
    client.write(switchHead(statusCode, headerValue(headers.upgrade) ?? '', out))
    target.onTunnel?.()
    this.resolve()
    // undici hands over the connection it made: a net.Socket (tls.TLSSocket to an https peer).
    spliceTunnel(client, upstream as Socket, this.opts.streamIdleTimeoutMs, () => this.finish())
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // Backpressure: a slow client pauses the worker's socket instead of buffering its reply here.
    if (!this.outgoing.write(chunk)) {
      controller.pause()
      this.outgoing.once('drain', () => controller.resume())
      this.boundStall()
    }
  }

  /**
   * undici's body timeout stops while the upstream is paused, so a client that never reads would hold
   * the lease for good. From the first pause on, the client socket's own idle timer (as a tunnel's)
   * bounds the time without a byte written to it, whether the client or the worker is the one stalling:
   * Node refreshes it on each write, no timer per chunk, and none at all for an answer never backed up.
   * Destroying the response aborts the upstream (see the constructor), which releases the lease.
   * Once the response has finished, Node's server sets the connection's keep-alive timeout over it.
   */
  private boundStall(): void {
    const { outgoing, opts } = this
    if (this.isStallBounded || opts.streamIdleTimeoutMs === 0) return
    this.isStallBounded = true
    outgoing.setTimeout(opts.streamIdleTimeoutMs, () => outgoing.destroy())
  }

  onResponseEnd(): void {
    this.outgoing.end()
    this.finish()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.finish()
    if ((err as { code?: string }).code === 'BODY_TOO_LARGE') endAfterAnswer(this.outgoing)
    if (this.headersSent)
      this.outgoing.destroy() // the worker died mid-body or the client went away
    else this.reject(upstreamError(err, this.target, this.opts))
  }

  private finish(): void {
    if (this.done) return
    this.done = true
    this.target.onDone()
  }
}

/** Ours before forwarding, then the upstream's own entries, then this hop's duration. */
function serverTiming(target: ForwardTarget, upstream: string | string[] | undefined, hopMs: number): string {
  let timing = target.serverTiming
  const own = typeof upstream === 'string' ? upstream : upstream?.join(', ')
  if (own) timing = timing ? `${timing}, ${own}` : own
  const hop = `${target.hop};dur=${hopMs.toFixed(2)}`
  return timing ? `${timing}, ${hop}` : hop
}

/** A 101's head as written to the client: status line, the switch, then the end-to-end headers. */
function switchHead(statusCode: number, protocol: string, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${protocol}\r\n`
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`
  }
  return `${head}\r\n`
}

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value)

function hasBody(incoming: IncomingMessage): boolean {
  return incoming.headers['content-length'] !== undefined || incoming.headers['transfer-encoding'] !== undefined
}

function requestBody(incoming: IncomingMessage, maxBodyBytes: number) {
  if (!hasBody(incoming)) return null
  // Node enforces a declared content-length itself; only chunked bodies need counting.
  return incoming.headers['content-length'] !== undefined ? incoming : incoming.pipe(limitBytes(maxBodyBytes))
}

/**
 * A refused body is left unread: the connection ends after the 413 (Connection: close), instead of
 * Node reading and discarding the rest of the upload, or a half-read chunked body holding it open.
 */
function endAfterAnswer(outgoing: ServerResponse): void {
  if (!outgoing.headersSent) outgoing.setHeader('connection', 'close')
}

class BodyTooLarge extends Error {
  readonly code = 'BODY_TOO_LARGE'
}

function limitBytes(max: number): Transform {
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      seen += chunk.length
      cb(seen > max ? new BodyTooLarge(`body exceeds ${max} bytes`) : null, chunk)
    },
  })
}

const tooLarge = (max: number) => new GatewayError('PAYLOAD_TOO_LARGE', 413, `request body exceeds ${max} bytes`)

const headersTimeoutOf = (target: ForwardTarget, opts: NodeForwarderOptions): number =>
  target.hop === 'peer' ? (opts.peerTimeoutMs ?? opts.upstreamTimeoutMs) : opts.upstreamTimeoutMs

function upstreamError(err: unknown, target: ForwardTarget, opts: NodeForwarderOptions): GatewayError {
  if (err instanceof GatewayError) return err
  const code = (err as { code?: string } | null)?.code
  if (code === 'BODY_TOO_LARGE') return tooLarge(opts.maxBodyBytes)
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    const who = target.hop === 'peer' ? 'the owner gateway' : 'plugin'
    return new GatewayError('UPSTREAM_TIMEOUT', 504, `${who} did not answer within ${headersTimeoutOf(target, opts)} ms`, { cause: err })
  }
  return new GatewayError('UPSTREAM_ERROR', 502, 'plugin worker failed while handling the request', { cause: err })
}

/**
 * The Node proxy as a Hono Forwarder (@hono/node-server bindings). Not c.req.raw.signal for the
 * client: touching it makes @hono/node-server build a Web Request that starts consuming the body
 * stream the proxy hands to undici untouched.
 */
export function honoForwarder(proxy: NodeProxy): Forwarder {
  return {
    clientSignal: (c: Context<{ Bindings: HttpBindings }>) => proxy.clientSignal(c.env.outgoing),
    forward: (c: Context<{ Bindings: HttpBindings }>, target) =>
      proxy.forward(c.env.incoming, c.env.outgoing, target).then(() => RESPONSE_ALREADY_SENT),
  }
}
