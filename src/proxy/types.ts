import type { Context } from 'hono'
import type { Dispatcher } from 'undici'

export interface ForwardTarget {
  /** Connection pool to the upstream: a worker, or the peer gateway that owns the worker. */
  dispatcher: Dispatcher
  /** Path and query as the upstream must see them. */
  path: string
  /** Added to the upstream request: x-forwarded-*, x-request-id. */
  requestHeaders: Record<string, string>
  /** Added to the response: x-plugin-cold-start, x-request-id. */
  responseHeaders: Record<string, string>
  /** Server-Timing entries measured before forwarding; the upstream's own and this hop's are appended. */
  serverTiming: string
  /** Server-Timing name of this hop: `proxy` to a worker, `peer` to the owning gateway. */
  hop: 'proxy' | 'peer'
  /** Called exactly once when the response body has ended, failed or been abandoned, or the tunnel closed. */
  onDone(): void
  /** Called when the upstream switched protocols (101): the exchange is a tunnel until onDone. */
  onTunnel?(): void
  /**
   * An upstream answer the caller handles itself instead of relaying: an error returned here rejects
   * the forward, and nothing of that answer reaches the client.
   */
  refuse?(status: number, headers: Record<string, string | string[] | undefined>): Error | null
}

export interface Forwarder {
  forward(c: Context, target: ForwardTarget): Promise<Response>
  /** Aborts when the client goes away before its response is complete. */
  clientSignal(c: Context): AbortSignal
}
