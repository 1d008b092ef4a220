import type { Context } from 'hono'
import type { Worker } from '../workers/index.js'

export interface ForwardTarget {
  worker: Worker
  /** Path and query as the worker must see them (the gateway prefix removed, encoding untouched). */
  path: string
  /** Added to the upstream request: x-forwarded-*, x-request-id. */
  requestHeaders: Record<string, string>
  /** Added to the response: x-plugin-cold-start, x-request-id. */
  responseHeaders: Record<string, string>
  /** Server-Timing entries measured before forwarding; the proxy phase is appended. */
  serverTiming: string
  /** Called exactly once when the response body has ended, failed or been abandoned. */
  onDone(): void
}

export interface Forwarder {
  forward(c: Context, target: ForwardTarget): Promise<Response>
  /** Aborts when the client goes away before its response is complete. */
  clientSignal(c: Context): AbortSignal
}
