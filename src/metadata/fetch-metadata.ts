import type { Dispatcher } from 'undici'
import type { z } from 'zod'
import { Metadata } from '../contract/index.js'
import type { Clock, Logger } from '../core/index.js'
import { DeadlineExceeded, errorText, silentLogger, sleep, withDeadline } from '../core/index.js'

/** Why the (last) attempt failed; stable, so callers and tests branch on it, not on text. */
export type MetadataFailureReason =
  | 'http-status' // the worker answered non-2xx
  | 'timeout' // no complete answer within timeoutMs
  | 'network' // connection refused, reset, …
  | 'bad-json' // 2xx body that is not JSON
  | 'invalid-metadata' // JSON that fails the contract Metadata schema
  | 'too-large' // body over maxBodyBytes
  | 'aborted' // the caller's signal aborted

export type FetchMetadataResult =
  | { ok: true; metadata: Metadata; attempts: number }
  | { ok: false; error: string; reason: MetadataFailureReason; attempts: number }

/** How a fetch retries (config.ts: METADATA_FETCH_DEFAULTS, CONTRACT.md §6). */
export interface MetadataFetchConfig {
  attempts: number
  /** Pause after failed attempt n (the last entry repeats); none follows the final attempt. */
  backoffMs: readonly number[]
  /** Bound on each attempt, body included. */
  timeoutMs: number
}

export interface FetchMetadataOptions extends MetadataFetchConfig {
  /** The worker's own keep-alive pool (its origin is 127.0.0.1:<port>, CONTRACT.md §2). */
  dispatcher: Dispatcher
  clock: Clock
  signal?: AbortSignal
  /** Bound on the answer's body; MAX_BODY_BYTES unless given. */
  maxBodyBytes?: number
  log?: Logger
}

// Real metadata is a few KiB; a worker streaming more is broken, not informative.
const MAX_BODY_BYTES = 1024 * 1024

type Failure = { ok: false; error: string; reason: MetadataFailureReason }
type Attempt = { ok: true; metadata: Metadata } | Failure

const fail = (reason: MetadataFailureReason, error: string): Failure => ({ ok: false, reason, error })

/**
 * GET /metadata from a worker, validated with the contract schema. Never throws: every failure
 * (including invalid metadata, CONTRACT.md §3) comes back as `{ ok: false }` with a reason.
 */
export async function fetchMetadata(opts: FetchMetadataOptions): Promise<FetchMetadataResult> {
  const attempts = Math.max(1, opts.attempts)
  const { backoffMs } = opts
  const log = opts.log ?? silentLogger
  let last: Failure = fail('aborted', 'not attempted')
  let attempt = 0
  while (attempt < attempts) {
    attempt++
    const outcome = await attemptOnce(opts)
    if (outcome.ok) return { ok: true, metadata: outcome.metadata, attempts: attempt }
    last = outcome
    if (last.reason === 'aborted') break
    log.debug({ attempt, reason: last.reason, error: last.error }, 'metadata fetch attempt failed')
    if (attempt === attempts) break
    try {
      await sleep(opts.clock, backoffMs[Math.min(attempt - 1, backoffMs.length - 1)] ?? 0, opts.signal)
    } catch {
      // sleep rejects only when the caller's signal aborts the backoff
      last = fail('aborted', 'metadata fetch aborted')
      break
    }
  }
  const error = last.reason === 'aborted' ? last.error : `${last.error} (after ${attempt} attempt${attempt === 1 ? '' : 's'})`
  return { ok: false, error, reason: last.reason, attempts: attempt }
}

async function attemptOnce(opts: FetchMetadataOptions): Promise<Attempt> {
  const { timeoutMs, maxBodyBytes = MAX_BODY_BYTES } = opts
  if (opts.signal?.aborted) return fail('aborted', 'metadata fetch aborted')
  try {
    // The deadline covers the whole exchange, body included: a worker that sends headers and
    // then stalls is as stuck as one that never answers.
    return await withDeadline(
      opts.clock,
      timeoutMs,
      async (signal) => {
        const res = await opts.dispatcher.request({
          method: 'GET',
          path: '/metadata',
          headers: { accept: 'application/json' },
          signal,
        })
        if (res.statusCode < 200 || res.statusCode >= 300) {
          await res.body.dump() // release the connection; the body of an error is not used
          return fail('http-status', `GET /metadata answered ${res.statusCode}`)
        }
        const text = await readBounded(res.body, maxBodyBytes)
        if (text === undefined) return fail('too-large', `GET /metadata body exceeds ${maxBodyBytes} bytes`)
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch (err) {
          return fail('bad-json', `GET /metadata body is not JSON: ${errorText(err)}`)
        }
        if (nestsDeeperThan(json, MAX_DEPTH)) return fail('invalid-metadata', `invalid metadata: nested deeper than ${MAX_DEPTH} levels`)
        const parsed = Metadata.safeParse(json)
        if (!parsed.success) return fail('invalid-metadata', `invalid metadata: ${summariseIssues(parsed.error)}`)
        return { ok: true, metadata: parsed.data }
      },
      opts.signal,
    )
  } catch (err) {
    if (err instanceof DeadlineExceeded) return fail('timeout', `GET /metadata did not answer within ${timeoutMs} ms`)
    if (opts.signal?.aborted) return fail('aborted', 'metadata fetch aborted')
    const code = (err as { code?: unknown } | null)?.code
    return fail('network', `GET /metadata failed: ${typeof code === 'string' ? `${code} ` : ''}${errorText(err)}`.trim())
  }
}

// Real metadata nests a handful of levels. The schema lets some parts hold any JSON (pages, MCP
// servers), and a value nested thousands deep would break JSON.stringify when it is stored.
const MAX_DEPTH = 64

/** Iterative, so the check itself cannot overflow the stack. */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth] = item
    if (typeof v !== 'object' || v === null) continue
    if (depth >= max) return true
    for (const child of Object.values(v)) stack.push([child, depth + 1])
  }
  return false
}

async function readBounded(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array)
    size += buf.byteLength
    if (size > maxBytes) {
      body.destroy()
      return undefined
    }
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The first few zod issues on one line, for the metadataError column and logs. */
function summariseIssues(error: z.ZodError): string {
  const shown = error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ')
  const more = error.issues.length - 5
  return more > 0 ? `${shown}; and ${more} more` : shown
}
