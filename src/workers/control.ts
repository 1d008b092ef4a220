import { GatewayError, errorText } from '../core/index.js'
import type { Worker } from './types.js'

export interface ControlResult {
  status: number
  body: unknown
}

/** Calls one of a worker's control endpoints (CONTRACT.md §3) with a bounded wait; JSON both ways. */
export async function callWorker(
  worker: Worker,
  method: 'GET' | 'POST',
  path: string,
  payload: unknown,
  timeoutMs: number,
): Promise<ControlResult> {
  try {
    const res = await worker.dispatcher.request({
      method,
      path,
      headers: payload === undefined ? {} : { 'content-type': 'application/json' },
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
    return { status: res.statusCode, body }
  } catch (err) {
    const code = (err as { code?: string } | null)?.code
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      throw new GatewayError('UPSTREAM_TIMEOUT', 504, `worker did not answer ${path} within ${timeoutMs} ms`, { cause: err })
    }
    throw new GatewayError('UPSTREAM_ERROR', 502, `worker call ${path} failed: ${errorText(err)}`, { cause: err })
  }
}
