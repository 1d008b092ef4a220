import type { IncomingMessage, ServerResponse } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { Context } from 'hono'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../core/index.js'
import { forwardHeaders, responseHeaders } from './headers.js'
import type { ForwardTarget, Forwarder } from './types.js'

export interface NodeForwarderOptions {
  upstreamTimeoutMs: number
  maxBodyBytes: number
}

/**
 * Streams the Node request straight into the worker's undici Pool and the answer straight back
 * to the Node response: no Web stream conversion and no buffering, so raw bodies stay byte-identical.
 */
export function createNodeForwarder(opts: NodeForwarderOptions): Forwarder {
  // Not c.req.raw.signal: touching it makes @hono/node-server build a Web Request that starts
  // consuming the body stream this forwarder hands to undici untouched.
  const signals = new WeakMap<ServerResponse, AbortController>()
  function clientSignal(c: Context<{ Bindings: HttpBindings }>): AbortSignal {
    const { outgoing } = c.env
    let controller = signals.get(outgoing)
    if (!controller) {
      const created = new AbortController()
      outgoing.once('close', () => {
        if (!outgoing.writableFinished) created.abort(new Error('client closed the connection'))
      })
      signals.set(outgoing, created)
      controller = created
    }
    return controller.signal
  }

  return {
    clientSignal,
    async forward(c: Context<{ Bindings: HttpBindings }>, target: ForwardTarget): Promise<Response> {
      const { incoming, outgoing } = c.env
      let done = false
      const finish = () => {
        if (done) return
        done = true
        target.onDone()
      }
      try {
        const declared = Number(incoming.headers['content-length'] ?? 0)
        if (declared > opts.maxBodyBytes) throw tooLarge(opts.maxBodyBytes)
        const started = performance.now()
        const upstream = await target.dispatcher.request({
          method: incoming.method as Dispatcher.HttpMethod,
          path: target.path,
          headers: forwardHeaders(incoming.headers, target.requestHeaders),
          body: requestBody(incoming, opts.maxBodyBytes),
          signal: clientSignal(c),
          headersTimeout: opts.upstreamTimeoutMs,
          bodyTimeout: opts.upstreamTimeoutMs,
        })
        const hopMs = performance.now() - started
        const upstreamTiming = upstream.headers['server-timing']
        const timing = [target.serverTiming, ...(upstreamTiming ? [upstreamTiming].flat() : []), `${target.hop};dur=${hopMs.toFixed(2)}`]
          .filter(Boolean)
          .join(', ')
        outgoing.writeHead(
          upstream.statusCode,
          responseHeaders(upstream.headers, { ...target.responseHeaders, 'server-timing': timing }),
        )
        // Streamed replies (SSE) outlive the handler: the lease ends when the body does.
        pipeline(upstream.body, outgoing)
          .catch(() => outgoing.destroy()) // client went away or the worker died mid-body
          .finally(finish)
        return RESPONSE_ALREADY_SENT
      } catch (err) {
        finish()
        throw upstreamError(err, opts)
      }
    },
  }
}

function hasBody(incoming: IncomingMessage): boolean {
  return incoming.headers['content-length'] !== undefined || incoming.headers['transfer-encoding'] !== undefined
}

function requestBody(incoming: IncomingMessage, maxBodyBytes: number) {
  if (!hasBody(incoming)) return null
  // Node enforces a declared content-length itself; only chunked bodies need counting.
  return incoming.headers['content-length'] !== undefined ? incoming : incoming.pipe(limitBytes(maxBodyBytes))
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

function upstreamError(err: unknown, opts: NodeForwarderOptions): GatewayError {
  if (err instanceof GatewayError) return err
  const code = (err as { code?: string } | null)?.code
  if (code === 'BODY_TOO_LARGE') return tooLarge(opts.maxBodyBytes)
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('UPSTREAM_TIMEOUT', 504, `plugin did not answer within ${opts.upstreamTimeoutMs} ms`, { cause: err })
  }
  return new GatewayError('UPSTREAM_ERROR', 502, 'plugin worker failed while handling the request', { cause: err })
}

