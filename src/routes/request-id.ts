import type { MiddlewareHandler } from 'hono'
import { requestId } from 'hono/request-id'

// An incoming x-request-id is kept only when it is short and plain; otherwise a new one is made.
const REQUEST_ID = /^[\w.:-]{1,128}$/

export const isPlainRequestId = (value: string | undefined): value is string => value !== undefined && REQUEST_ID.test(value)

/**
 * Sets `c.var.requestId` and the `x-request-id` response header. Shared by the Node app and the edge
 * entry, so an id minted at the edge is kept by the Node gateway and reaches the worker unchanged.
 */
export function requestIdMiddleware(opts: { generate?: () => string } = {}): MiddlewareHandler {
  const generate = opts.generate ?? (() => crypto.randomUUID())
  return requestId({
    headerName: 'x-request-id',
    limitLength: 128,
    generator: (c) => {
      const incoming = c.req.header('x-request-id')
      return isPlainRequestId(incoming) ? incoming : generate()
    },
  })
}
