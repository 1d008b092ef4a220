import type { Dispatcher } from 'undici'
import { GatewayError, errorText } from '../core/index.js'
import type { Worker } from './types.js'

export interface ControlResult {
  status: number
  body: unknown
  /** The answer's Retry-After, when it had a valid one (seconds). */
  retryAfterSeconds?: number
}

// A control answer is a few KiB, a tool's result maybe some MiB. A worker answering more is broken or
// hostile: read whole, its answer could take the gateway's memory, and every organization's requests.
const MAX_ANSWER_BYTES = 32 * 1024 * 1024

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
    const text = await boundedText(res.body, path)
    let body: unknown = text
    try {
      body = text ? JSON.parse(text) : null
    } catch {
      // Not JSON: hand the text back as-is; the caller validates the shape it expects.
    }
    const retryAfter = Number(res.headers['retry-after'])
    return { status: res.statusCode, body, ...(Number.isSafeInteger(retryAfter) && retryAfter >= 0 && { retryAfterSeconds: retryAfter }) }
  } catch (err) {
    if (err instanceof GatewayError) throw err
    const code = (err as { code?: string } | null)?.code
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      throw new GatewayError('UPSTREAM_TIMEOUT', 504, `no answer to ${path} within ${timeoutMs} ms`, { cause: err })
    }
    throw new GatewayError('UPSTREAM_ERROR', 502, `call to ${path} failed: ${errorText(err)}`, { cause: err })
  }
}

/** The body as text, refused (502) past MAX_ANSWER_BYTES: the rest is not read, the connection is closed. */
async function boundedText(body: Dispatcher.ResponseData['body'], path: string): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_ANSWER_BYTES) {
      body.destroy()
      throw new GatewayError('UPSTREAM_ERROR', 502, `the answer to ${path} is larger than ${MAX_ANSWER_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size).toString('utf8')
}
