import type { Context, ErrorHandler, NotFoundHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'

/** The JSON every error answers with: `{"error":{"code","message"}}`, and the details when there are some. */
export const errorBody = (e: GatewayError) => ({
  error: { code: e.code, message: e.message, ...(e.details !== undefined && { details: e.details }) },
})

/** The one place errors become responses: errorBody, Retry-After when known, the error's own headers. */
export function errorResponse(c: Context, e: GatewayError): Response {
  if (e.retryAfterSeconds !== undefined) c.header('retry-after', String(e.retryAfterSeconds))
  for (const name in e.headers) c.header(name, e.headers[name])
  return c.json(errorBody(e), e.status)
}

/** Logs a failed request as every entry does: server faults as errors (with the cause), refusals at debug. */
export function logFailure(log: Logger, e: GatewayError, err: unknown, path: string): void {
  if (e.status >= 500) log.error({ err, code: e.code, path }, 'request failed')
  else log.debug({ code: e.code, path }, 'request refused')
}

export function onError(log: Logger): ErrorHandler {
  return function handleError(err, c) {
    const e = toGatewayError(err)
    logFailure(log, e, err, c.req.path)
    return errorResponse(c, e)
  }
}

export const notFound: NotFoundHandler = function handleNotFound(c) {
  return errorResponse(c, new GatewayError('NOT_FOUND', 404, 'no such route'))
}

/** Any thrown value as the coded error it answers with: unknown ones are a 500 INTERNAL. */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err
  if (err instanceof HTTPException) {
    const status = err.status
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 401 ? 'UNAUTHORIZED' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL'
    return new GatewayError(code, status, err.message || 'request refused', { cause: err })
  }
  return new GatewayError('INTERNAL', 500, 'internal error', { cause: err })
}
