import { Agent, request, type Dispatcher } from 'undici'

export interface TimedResponse {
  status: number
  /** Request sent → response headers received (first byte), ms. */
  ms: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

// One keep-alive agent for the bench's own control and probe requests (not the load generator).
const agent = new Agent({ keepAliveTimeout: 10_000, connections: 512 })

/** GET (or any method) with the time to the response headers measured on the monotonic clock. */
export async function timedRequest(
  url: string,
  opts: { method?: Dispatcher.HttpMethod; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<TimedResponse> {
  const started = performance.now()
  const res = await request(url, {
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    dispatcher: agent,
    headersTimeout: opts.timeoutMs ?? 30_000,
    bodyTimeout: opts.timeoutMs ?? 30_000,
  })
  const ms = performance.now() - started
  return { status: res.statusCode, ms, headers: res.headers, body: await res.body.text() }
}

/** A JSON call that must succeed (2xx); used for the admin API. */
export async function jsonCall<T>(url: string, method: Dispatcher.HttpMethod = 'GET', body?: unknown): Promise<T> {
  const res = await timedRequest(url, {
    method,
    ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  })
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${url} → ${res.status}: ${res.body.slice(0, 300)}`)
  return (res.body ? JSON.parse(res.body) : null) as T
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  everyMs = 10,
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i] as T, i)
    }
  })
  await Promise.all(lanes)
  return results
}

export async function closeHttp(): Promise<void> {
  await agent.close()
}
