import type { ChildProcess } from 'node:child_process'
import type { Pool } from 'undici'
import type { SdkVersion, WorkerPermission } from '../contract/index.js'
import type { GatewayError, WorkerKey } from '../core/index.js'
import type { AuthState, InstanceConfig } from '../db/index.js'

/** Everything needed to start the worker of one (org, plugin) pair. */
export interface WorkerSpec {
  orgId: string
  pluginId: string
  pluginDir: string
  entryPath: string
  sdkVersion: SdkVersion
  /** The plugin's catalog checksum: which version of its code this worker runs. */
  checksum: string
  /** Host variables the manifest allows this plugin to see (CONTRACT.md §2). */
  envAllowList: readonly string[]
  /** What the manifest lets its sandboxed workers do beyond reading their code (README: Sandbox). */
  permissions: readonly WorkerPermission[]
  /** Plaintext config as the worker must see it. */
  config: InstanceConfig
  authState: AuthState | null
}

/** A live worker process of one generation. Mutable counters belong to the pool. */
export interface Worker {
  readonly key: WorkerKey
  readonly orgId: string
  readonly pluginId: string
  readonly gen: number
  readonly sdkVersion: SdkVersion
  /** Its spec's checksum: the code version it runs (metadata it reports is stored for that version only). */
  readonly checksum: string
  readonly child: ChildProcess
  readonly pid: number
  readonly port: number
  /** Keep-alive connection pool to this worker; closed when the worker stops. */
  readonly dispatcher: Pool
  readonly startedAt: number
  /** Leases held: requests whose response has not ended, and open tunnels. */
  inFlight: number
  /** Of those, open tunnels (upgraded connections): a stop does not wait for them to drain. */
  tunnels: number
  lastActiveAt: number
}

/** Phases of a cold start, in ms, for Server-Timing and metrics. */
export interface StartTiming {
  queueMs: number
  spawnMs: number
  readyMs: number
  metadataMs: number
  totalMs: number
}

export interface Lease {
  readonly worker: Worker
  /** Present when this request started (or waited for the start of) the worker. */
  readonly cold: StartTiming | null
  /** Marks the request done; idempotent. Call when the response body has ended, or the tunnel closed. */
  release(): void
  /**
   * The exchange became a tunnel (the worker switched protocols): it stays in flight until it closes,
   * so the worker is never idle-reaped under it, but a stop does not wait for it to drain: the worker's
   * exit ends it.
   */
  holdTunnel(): void
}

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'error'

export interface WorkerInfo {
  orgId: string
  pluginId: string
  gen: number
  state: WorkerState
  sdkVersion: SdkVersion | null
  pid: number | null
  port: number | null
  startedAt: number | null
  lastActivityAt: number | null
  inFlight: number
  /** Open tunnels, counted in inFlight too. */
  tunnels: number
  lastError: string | null
  /**
   * The generation of its key this one replaces (a roll), while that one still runs beside it (listed
   * too: draining as `stopping`, or a start of the old code still `starting`); null otherwise.
   */
  replacing: number | null
}

export type StopReason = 'idle' | 'evicted' | 'admin' | 'shutdown' | 'replaced' | 'removed' | 'lease-lost'

/** Runtime transitions the pool reports, in order per key, for persistence and metrics. */
export type PoolEvent =
  | { type: 'starting'; orgId: string; pluginId: string; gen: number; sdkVersion: SdkVersion }
  | { type: 'ready'; worker: Worker; timing: StartTiming }
  | { type: 'stopping'; worker: Worker; reason: StopReason }
  /**
   * `superseded`: a newer generation of the key started while this one was stopping (a request that
   * saw `stopping` starts the next one), so the key is not idle: its lease and row belong to that one.
   */
  | { type: 'stopped'; orgId: string; pluginId: string; gen: number; reason: StopReason; exit: ExitInfo; superseded: boolean }
  | { type: 'stopped'; orgId: string; pluginId: string; gen: number; reason: 'crashed'; exit: ExitInfo; error: string; superseded: false }
  | { type: 'start-failed'; orgId: string; pluginId: string; gen: number; error: GatewayError; retryAt: number }
  | { type: 'activity'; worker: Worker }

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface WorkerPool {
  /** A lease on the key's ready worker, found with one lookup; undefined when there is none (start it with acquire). */
  leaseReady(orgId: string, pluginId: string): Lease | undefined
  /**
   * A lease on the spec's key's worker, starting one (single-flight) when needed. Waiting for a start
   * is bounded per key and per org; `signal` (the client's) gives up the wait.
   */
  acquire(spec: WorkerSpec, signal?: AbortSignal): Promise<Lease>
  /** The ready worker of a key, if any, without starting one or counting a request. */
  peek(orgId: string, pluginId: string): Worker | undefined
  /** The key's ready worker once a start under way has settled; undefined if none (never starts one). */
  settled(orgId: string, pluginId: string): Promise<Worker | undefined>
  /** Drains and stops the key's worker; resolves when the process has exited. */
  stop(orgId: string, pluginId: string, reason?: StopReason): Promise<void>
  /**
   * Rolls every worker of a plugin whose code changed (or went away): each live generation retires,
   * so the next request for its key starts a new one, while the requests it holds (and those waiting
   * for it to start) finish on it; then it stops as any worker does. Prewarmed runners and the sandbox
   * policy of the plugin are worked out again. Returns how many workers were rolled; does not wait.
   */
  roll(pluginId: string, reason: 'replaced' | 'removed'): number
  list(): WorkerInfo[]
  /** Requests waiting for a worker to start right now. */
  queued(): number
  /** Prewarmed runners booted and waiting for a cold start. */
  prewarmed(): number
  /** Runtime transitions, in order per key, for persistence, metrics and the cluster. A listener must not throw. */
  subscribe(listener: (event: PoolEvent) => void): () => void
  /** Refuses new work, stops every worker and waits for their exit. Idempotent. */
  close(): Promise<void>
}
