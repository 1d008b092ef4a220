import type { Dispatcher } from 'undici'
import { GatewayError, errorText } from '../core/index.js'
import type { Worker } from './types.js'

export interface ControlResult {
  status: number
  body: unknown
  /** The answer's Retry-After, when it had a valid one (seconds). */
  retryAfterSeconds?: number
}

/** Calls one of a worker's control endpoints (CONTRACT.md §3) with a bounded wait; JSON both ways. */
export const callWorker = (worker: Worker, method: 'GET' | 'POST', path: string, payload: unknown, timeoutMs: number) =>
  callJson(worker.dispatcher, { method, path, payload, timeoutMs })

/**
 * One JSON request over a keep-alive pool (a worker's, or a peer gateway's), bounded by timeoutMs.
 * A body that is not JSON comes back as text; the caller validates the shape it expects.
 */
export async function callJson(
  dispatcher: Dispatcher,
  req: { method: 'GET' | 'POST'; path: string; payload: unknown; timeoutMs: number; headers?: Record<string, string> },
): Promise<ControlResult> {
  const { method, path, payload, timeoutMs } = req
  try {
    const res = await dispatcher.request({
      method,
      path,
      headers: { ...(payload !== undefined && { 'content-type': 'application/json' }), ...req.headers },
      body: payload === undefined ? null : JSON.stringify(payload),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    const text = await res.body.text()
    let body: unknown = text
    try {
      body = text ? JSON.parse(text) : null
    } catch {
      // Not JSON: hand the text back as-is; the caller validates the shape it expects.
    }
    const retryAfter = Number(res.headers['retry-after'])
    return { status: res.statusCode, body, ...(Number.isSafeInteger(retryAfter) && retryAfter >= 0 && { retryAfterSeconds: retryAfter }) }
  } catch (err) {
    const code = (err as { code?: string } | null)?.code
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      throw new GatewayError('UPSTREAM_TIMEOUT', 504, `no answer to ${path} within ${timeoutMs} ms`, { cause: err })
    }
    throw new GatewayError('UPSTREAM_ERROR', 502, `call to ${path} failed: ${errorText(err)}`, { cause: err })
  }
}
