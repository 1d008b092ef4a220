import type { Context, ErrorHandler, NotFoundHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'

/** The one place errors become responses: `{"error":{"code","message"}}`, Retry-After when known. */
export function errorResponse(c: Context, e: GatewayError): Response {
  if (e.retryAfterSeconds !== undefined) c.header('retry-after', String(e.retryAfterSeconds))
  const body = { error: { code: e.code, message: e.message, ...(e.details !== undefined && { details: e.details }) } }
  return c.json(body, e.status)
}

export function onError(log: Logger): ErrorHandler {
  return function handleError(err, c) {
    const e = toGatewayError(err)
    if (e.status >= 500) log.error({ err, code: e.code, path: c.req.path }, 'request failed')
    else log.debug({ code: e.code, path: c.req.path }, 'request refused')
    return errorResponse(c, e)
  }
}

export const notFound: NotFoundHandler = function handleNotFound(c) {
  return errorResponse(c, new GatewayError('NOT_FOUND', 404, 'no such route'))
}

function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err
  if (err instanceof HTTPException) {
    const status = err.status
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 401 ? 'UNAUTHORIZED' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL'
    return new GatewayError(code, status, err.message || 'request refused', { cause: err })
  }
  return new GatewayError('INTERNAL', 500, 'internal error', { cause: err })
}
