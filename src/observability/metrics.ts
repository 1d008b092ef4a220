import type { PoolEvent } from '../workers/index.js'

/** Which part of the HTTP surface answered; a small fixed set, so it is safe as a metric label. */
export type RouteClass = 'proxy' | 'admin' | 'metrics' | 'health' | 'other'

export interface RequestSample {
  route: RouteClass
  status: number
  /** Time until the response headers were ready; a streamed body may go on after this. */
  durationMs: number
  /** Set on a proxied response that started, or waited for, its worker (`x-plugin-cold-start: 1`). */
  cold: { queueMs: number } | null
}

/**
 * What the app and the pool report, and how it is read back. Runtime-agnostic on purpose: the Node
 * entry backs it with prom-client, `app.ts` only sees this interface (it must stay free of node:*).
 */
export interface Metrics {
  observeRequest(sample: RequestSample): void
  /** Pool event sink: never throws. */
  observePoolEvent(event: PoolEvent): void
  /** The exposition of every metric, e.g. Prometheus text format. */
  render(): Promise<{ contentType: string; body: string }>
}
