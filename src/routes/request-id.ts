import type { MiddlewareHandler } from 'hono'
import { webRequestHeader, type RequestHeader } from './env.js'

// An incoming x-request-id is kept only when it is short and plain; otherwise a new one is made.
const REQUEST_ID = /^[\w.:-]{1,128}$/

export const isPlainRequestId = (value: string | undefined): value is string => value !== undefined && REQUEST_ID.test(value)

// What hono/request-id, which this middleware replaced, kept as well: word characters, '-' and '='.
const HONO_REQUEST_ID = /^[\w=-]{1,128}$/

/** The request's id: the client's own when it is plain enough to pass on, else a new one. */
export const requestIdFor = (incoming: string | undefined, generate: () => string): string =>
  isPlainRequestId(incoming) || (incoming !== undefined && HONO_REQUEST_ID.test(incoming)) ? incoming : generate()

/**
 * Sets `c.var.requestId` and the `x-request-id` response header. Shared by the Node app and the edge
 * entry, so an id minted at the edge is kept by the Node gateway and reaches the worker unchanged.
 */
export function requestIdMiddleware(opts: { generate?: () => string; header?: RequestHeader } = {}): MiddlewareHandler {
  const generate = opts.generate ?? (() => crypto.randomUUID())
  const header = opts.header ?? webRequestHeader
  return async function requestId(c, next) {
    const id = requestIdFor(header(c, 'x-request-id'), generate)
    c.set('requestId', id)
    c.header('x-request-id', id)
    await next()
  }
}
