import type { Clock, Logger, WorkerKey } from '../core/index.js'
import { abortable, GatewayError, errorText, isGatewayError, splitWorkerKey, withDeadline, workerKey } from '../core/index.js'
import type { PoolConfig } from '../config.js'
import { type Launched, launchWorker, PortInUseError, prewarmCommand, spawnProc, startFailed, type SpawnFn } from './launch.js'
import { createPrewarmPool } from './prewarm.js'
import type { Policy, Sandbox } from './sandbox/index.js'
import { allocatePort } from './ports.js'
import { stopProcess } from './stop.js'
import { needsOwnBoot } from './worker-env.js'
import type { ExitInfo, Lease, PoolEvent, StartTiming, StopReason, Worker, WorkerInfo, WorkerPool, WorkerSpec } from './types.js'

export interface PoolDeps {
  config: PoolConfig
  clock: Clock
  spawn: SpawnFn
  /** Confines every process the pool starts; the pool closes it once they have all exited. */
  sandbox: Sandbox
  log: Logger
  /** Runs after a worker is ready and before it takes requests (metadata fetch); counted in the cold start. */
  afterReady?: (worker: Worker, signal: AbortSignal) => Promise<void>
}

const PORT_ATTEMPTS = 3
export const PREWARM_REFILL_DELAY_MS = 50

// One slot per key. Each state holds only its own data; `gen` fences every continuation.
type Slot =
  | StartingSlot
  | { state: 'ready'; gen: number; worker: Worker; proc: ProcEnd; cancelIdle: () => void }
  | { state: 'stopping'; gen: number; worker: Worker; stopped: Promise<void> }
  | { state: 'error'; gen: number; orgId: string; pluginId: string; error: GatewayError; retryAt: number; failures: number }

/**
 * `isRolled`: its plugin's code changed while it started (roll). Requests already waiting for it are
 * served by it; a new request starts the next generation, and it retires once its waiters have it.
 */
interface StartingSlot {
  state: 'starting'
  gen: number
  key: WorkerKey
  orgId: string
  pending: number
  ready: Promise<StartResult>
  isRolled: boolean
  /** Called when pending drops to 0 (the last waiter holds its lease, or gave up). */
  onNoneWaiting?: () => void
}

/** How a worker's process ends: its exit, then the release of what the sandbox gave it (its uid). */
type ProcEnd = Pick<Launched, 'exited' | 'released'>

interface StartResult {
  worker: Worker
  timing: StartTiming
}

export function createWorkerPool(deps: PoolDeps): WorkerPool {
  const { config, clock, log } = deps
  const slots = new Map<WorkerKey, Slot>()
  const retiring = new Set<Promise<void>>()
  // Workers draining or stopping, also one its key no longer holds (a newer generation started): list() shows them.
  const retiringWorkers = new Set<Worker>()
  // Every start under way, also one its key no longer holds (rolled, then superseded): close() waits for them.
  const starts = new Set<StartingSlot>()
  const pendingByOrg = new Map<string, number>()
  // Rolls per plugin so far: a sandbox policy worked out before a roll of its plugin confines code that
  // has been replaced, so no prewarmed runner is booted for it (no start of the new code would take it).
  const rollsOf = new Map<string, number>()
  const drainWaiters = new Map<Worker, () => void>()
  // Releases of workers retired or crashed, until the sandbox has their uids back: a start that finds
  // every worker uid in use waits for one of those instead of refusing (makeRoom counts them as gone).
  const freeing = new Set<Promise<void>>()
  let nextGen = 1
  let closing: Promise<void> | null = null
  const listeners: Array<(event: PoolEvent) => void> = []
  const emit = (event: PoolEvent) => {
    for (const listener of listeners) listener(event)
  }
  // Prewarmed runners serve SDK v2 starts with our own runner only (a custom RUNNER_COMMAND may not
  // know --prewarm); each one is the same command, node flags and base env as a fresh worker.
  const { sandbox } = deps
  const prewarm =
    config.prewarmPoolSize > 0 && config.ownRunner
      ? createPrewarmPool<Policy>({
          size: config.prewarmPoolSize,
          spawn: (policy) =>
            spawnProc(
              { spawn: deps.spawn, clock, log: log.child({ prewarmed: true }) },
              sandbox.confine(policy, prewarmCommand(config), { ...config.baseEnv }),
              '/',
            ),
          ...(sandbox.anyPlugin && { initial: sandbox.anyPlugin }),
          log,
        })
      : undefined

  async function acquire(spec: WorkerSpec, signal?: AbortSignal): Promise<Lease> {
    if (closing) throw new GatewayError('SHUTTING_DOWN', 503, 'gateway is shutting down', { retryAfterSeconds: 1 })
    const key = workerKey(spec.orgId, spec.pluginId)
    const slot = slots.get(key)
    if (slot?.state === 'ready') return lease(slot.worker, null)
    if (slot?.state === 'error' && clock.now() < slot.retryAt) {
      throw new GatewayError(slot.error.code, slot.error.status, slot.error.message, {
        retryAfterSeconds: Math.max(1, Math.ceil((slot.retryAt - clock.now()) / 1000)),
      })
    }
    // A stopping slot is never sent to: the next generation starts beside the retiring one. Nor is
    // one starting with code that has changed since.
    if (slot?.state === 'starting' && !slot.isRolled) return waitForStart(slot, spec.orgId, signal)
    makeRoom(spec.orgId)
    return waitForStart(beginStart(key, spec, slot?.state === 'error' ? slot.failures : 0), spec.orgId, signal)
  }

  async function waitForStart(slot: StartingSlot, orgId: string, signal?: AbortSignal) {
    const orgPending = pendingByOrg.get(orgId) ?? 0
    if (slot.pending >= config.maxPendingPerKey) {
      throw new GatewayError('QUEUE_FULL', 503, 'too many requests are waiting for this worker to start', { retryAfterSeconds: 1 })
    }
    if (orgPending >= config.maxPendingPerOrg) {
      throw new GatewayError('ORG_QUEUE_FULL', 429, 'too many requests of this organization are waiting for workers', {
        retryAfterSeconds: 1,
      })
    }
    const queuedAt = clock.now()
    slot.pending++
    pendingByOrg.set(orgId, orgPending + 1)
    try {
      const { worker, timing } = await abortable(slot.ready, signal)
      return lease(worker, { ...timing, queueMs: clock.now() - queuedAt })
    } finally {
      slot.pending--
      if (slot.pending === 0) slot.onNoneWaiting?.()
      const left = (pendingByOrg.get(orgId) ?? 1) - 1
      if (left === 0) pendingByOrg.delete(orgId)
      else pendingByOrg.set(orgId, left)
    }
  }

  function beginStart(key: WorkerKey, spec: WorkerSpec, failures: number): StartingSlot {
    const gen = nextGen++
    // The slot enters the map before the first await: every concurrent request joins this start.
    const slot: StartingSlot = {
      state: 'starting',
      gen,
      key,
      orgId: spec.orgId,
      pending: 0,
      isRolled: false,
      ready: start(key, spec, failures, () => slot), // start() awaits before it reads the slot
    }
    starts.add(slot)
    // Observed by waiters; a start nobody waits for must not be unhandled.
    void slot.ready.catch(() => {}).finally(() => starts.delete(slot))
    slots.set(key, slot)
    return slot
  }

  async function start(key: WorkerKey, spec: WorkerSpec, failures: number, slotOf: () => StartingSlot): Promise<StartResult> {
    const t0 = clock.now()
    await Promise.resolve() // let beginStart publish the slot before anything can fail synchronously
    const starting = slotOf()
    const { gen } = starting
    let refill: { policy: Policy; took: boolean } | undefined
    const rolls = rollsOf.get(spec.pluginId) ?? 0 // read before the policy is: a roll during policyOf makes it stale
    try {
      emit({ type: 'starting', orgId: spec.orgId, pluginId: spec.pluginId, gen, sdkVersion: spec.sdkVersion })
      const wlog = log.child({ orgId: spec.orgId, pluginId: spec.pluginId, gen })
      const policy = await sandbox.policyOf(spec)
      const { port, launched } = await launchOnFreePort(spec, policy, rolls, wlog)
      if (isPrewarmable(spec)) refill = { policy, took: launched.prewarmed }
      const worker: Worker = {
        key,
        orgId: spec.orgId,
        pluginId: spec.pluginId,
        gen,
        sdkVersion: spec.sdkVersion,
        checksum: spec.checksum,
        child: launched.child,
        pid: launched.pid,
        port,
        dispatcher: launched.dispatcher,
        startedAt: clock.now(),
        inFlight: 0,
        tunnels: 0,
        lastActiveAt: clock.now(),
      }
      const metadataStart = clock.now()
      try {
        await afterReady(worker, spec, launched)
      } catch (err) {
        await stopProcess(worker, launched.exited, stopOptions())
        throw err
      }
      const timing: StartTiming = {
        queueMs: 0,
        spawnMs: launched.spawnMs,
        readyMs: launched.readyMs,
        metadataMs: clock.now() - metadataStart,
        totalMs: clock.now() - t0,
      }
      if (starting.isRolled && !closing) {
        // Its code changed while it started: it serves the requests that waited for it, and only those.
        if (slots.get(key) === starting) slots.delete(key)
        starts.delete(starting) // listed as the worker retiring from here on, not as a start too
        const waited = starting.pending === 0 ? undefined : new Promise<void>((resolve) => (starting.onNoneWaiting = resolve))
        void finishRetiring(key, worker, launched, 'replaced', waited)
        wlog.info({ pid: worker.pid, port, waiters: starting.pending }, 'worker ready after its plugin changed; retiring it')
        return { worker, timing }
      }
      if (slots.get(key)?.gen !== gen || closing) {
        // Superseded while starting (stop or shutdown): this generation must not serve.
        const exit = await stopProcess(worker, launched.exited, stopOptions())
        if (closing && slots.get(key)?.gen === gen) {
          // A shutdown, not a failure: the key ends stopped, with no error and no backoff.
          slots.delete(key)
          emit({ type: 'stopped', orgId: spec.orgId, pluginId: spec.pluginId, gen, reason: 'shutdown', exit, superseded: false })
        }
        throw new GatewayError('WORKER_UNAVAILABLE', 503, 'worker was stopped while starting', { retryAfterSeconds: 1 })
      }
      const ready: Extract<Slot, { state: 'ready' }> = {
        state: 'ready',
        gen,
        worker,
        proc: launched,
        cancelIdle: armIdleTimer(key, gen, config.idleMs),
      }
      slots.set(key, ready)
      void launched.exited.then((exit) => onExit(key, worker, launched, exit))
      wlog.info({ pid: worker.pid, port, ms: timing.totalMs }, 'worker ready')
      emit({ type: 'ready', worker, timing })
      return { worker, timing }
    } catch (err) {
      if (slots.get(key)?.gen !== gen) throw err // superseded: the newer generation reports for the key
      if (isGatewayError(err) && err.code === 'CAPACITY_EXHAUSTED') {
        // The host is full (worker uids, ports), not the plugin at fault: refused with its own Retry-After,
        // and the next request may start it at once.
        slots.delete(key)
        emit({ type: 'start-failed', orgId: spec.orgId, pluginId: spec.pluginId, gen, error: err, retryAt: clock.now() })
        log.warn({ orgId: spec.orgId, pluginId: spec.pluginId, gen, code: err.code, err }, 'worker start refused')
        throw err
      }
      if (starting.isRolled) {
        // The failure of code that has been replaced: reported (the key's row and lease must not stay
        // the start's), but the new code starts without its backoff.
        slots.delete(key)
        emit({ type: 'start-failed', orgId: spec.orgId, pluginId: spec.pluginId, gen, error: startError(err, 1), retryAt: clock.now() })
        throw err
      }
      // Exponential, capped backoff before this key may start again.
      const backoffMs = Math.min(config.restartBackoffMaxMs, config.restartBackoffMs * 2 ** failures)
      const retryAt = clock.now() + backoffMs
      const error = startError(err, Math.max(1, Math.ceil(backoffMs / 1000)))
      slots.set(key, { state: 'error', gen, orgId: spec.orgId, pluginId: spec.pluginId, error, retryAt, failures: failures + 1 })
      emit({ type: 'start-failed', orgId: spec.orgId, pluginId: spec.pluginId, gen, error, retryAt })
      log.warn({ orgId: spec.orgId, pluginId: spec.pluginId, gen, code: error.code, err: error }, 'worker start failed')
      throw error
    } finally {
      // Refill once this start and its first request are over, not during them (see PrewarmPool.refill).
      if (refill) {
        const { policy, took } = refill
        clock.setTimer(PREWARM_REFILL_DELAY_MS, () => refillPrewarm(policy, took, rolls))
      }
    }
  }

  function startError(err: unknown, retryAfterSeconds: number): GatewayError {
    const cause = err instanceof GatewayError ? err : undefined
    return new GatewayError(
      cause?.code ?? 'WORKER_START_FAILED',
      cause?.status ?? 503,
      cause?.message ?? `worker failed to start: ${errorText(err)}`,
      { cause: err, retryAfterSeconds },
    )
  }

  const isPrewarmable = (spec: WorkerSpec) => spec.sdkVersion === 'v2' && !needsOwnBoot(spec, config.hostEnv)

  /** Refills the prewarmed pool after a start under policy, unless its plugin rolled since `rolls` was read. */
  function refillPrewarm(policy: Policy, took: boolean, rolls: number): void {
    // The one policy of every plugin (sandbox off) confines no plugin's code: never stale.
    if (policy.pluginId !== undefined && (rollsOf.get(policy.pluginId) ?? 0) !== rolls) return
    prewarm?.refill(policy, took)
  }

  // Another process may bind a port between our check and the worker's listen: try a few more.
  /**
   * The pool's hook for a worker that just became ready (its metadata fetched), raced against the
   * worker's exit: one that dies meanwhile is a failed start (its backoff applies), and the hook is
   * called off rather than left retrying a dead port and blaming the plugin's metadata.
   */
  async function afterReady(worker: Worker, spec: WorkerSpec, launched: Launched): Promise<void> {
    if (!deps.afterReady) return
    // Aborted by the exit, whenever it comes: what the hook left running in the background asks a dead port too.
    const died = new AbortController()
    let isOver = false
    const exitedFirst = launched.exited.then((exit) => {
      died.abort()
      if (!isOver) throw startFailed(spec, exit, launched.stderrTail())
    })
    exitedFirst.catch(() => {}) // a rejection the race below reads, or nobody once it is over
    try {
      await Promise.race([deps.afterReady(worker, died.signal), exitedFirst])
    } finally {
      isOver = true
    }
  }

  async function launchOnFreePort(spec: WorkerSpec, policy: Policy, rolls: number, wlog: Logger) {
    let uidWait: AbortController | undefined
    let cancelUidWait = () => {}
    try {
      for (let attempt = 1; ; attempt++) {
        const port = await allocatePort(config.portRange, portsInUse())
        const prewarmed = isPrewarmable(spec) ? prewarm?.take(policy) : undefined
        try {
          const launched = await launchWorker(spec, port, { config, clock, spawn: deps.spawn, sandbox, log: wlog }, policy, {
            prewarmed,
            uidWait: uidWait?.signal,
          })
          return { port, launched }
        } catch (err) {
          if (prewarmed) refillPrewarm(policy, true, rolls)
          // Only the sandbox refuses a launch so: no worker uid free. A worker retired to make room (or
          // rolled, reaped, crashed) holds its uid until it has exited: wait for one, up to a start's deadline.
          if (isGatewayError(err) && err.code === 'CAPACITY_EXHAUSTED' && !uidWait && freeing.size > 0) {
            wlog.info({ freeing: freeing.size }, 'every worker uid in use; waiting for one being freed')
            const controller = new AbortController()
            cancelUidWait = clock.setTimer(config.startTimeoutMs, () => controller.abort())
            uidWait = controller
            continue
          }
          if (!(err instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw err
          wlog.debug({ port }, 'port taken meanwhile; trying another')
        }
      }
    } finally {
      cancelUidWait()
    }
  }

  function lease(worker: Worker, cold: StartTiming | null): Lease {
    worker.inFlight++
    worker.lastActiveAt = clock.now()
    let released = false
    let isTunnel = false
    return {
      worker,
      cold,
      release() {
        if (released) return
        released = true
        worker.inFlight--
        if (isTunnel) worker.tunnels--
        worker.lastActiveAt = clock.now()
        if (isDrained(worker)) drainWaiters.get(worker)?.()
        emit({ type: 'activity', worker })
      },
      holdTunnel() {
        if (released || isTunnel) return
        isTunnel = true
        worker.tunnels++
        if (isDrained(worker)) drainWaiters.get(worker)?.()
      },
    }
  }

  // A stop waits for requests, not for tunnels: one may stay open for hours, and the worker's exit closes it.
  const isDrained = (worker: Worker) => worker.inFlight === worker.tunnels

  // One timer per worker per idle window, not one per request: it re-arms for the time still owed.
  function armIdleTimer(key: WorkerKey, gen: number, delayMs: number): () => void {
    return clock.setTimer(delayMs, () => {
      const slot = slots.get(key)
      if (slot?.state !== 'ready' || slot.gen !== gen) return
      const idleFor = clock.now() - slot.worker.lastActiveAt
      if (slot.worker.inFlight === 0 && idleFor >= config.idleMs) void retire(key, slot, 'idle')
      else slot.cancelIdle = armIdleTimer(key, gen, slot.worker.inFlight > 0 ? config.idleMs : config.idleMs - idleFor)
    })
  }

  function retire(key: WorkerKey, slot: Extract<Slot, { state: 'ready' }>, reason: StopReason): Promise<void> {
    slot.cancelIdle()
    const { worker } = slot
    emit({ type: 'stopping', worker, reason })
    const stopped = finishRetiring(key, worker, slot.proc, reason)
    slots.set(key, { state: 'stopping', gen: slot.gen, worker, stopped })
    return stopped
  }

  /** Drains worker (once `first` has settled), stops it, and reports the stop; tracked until done, for close(). */
  function finishRetiring(key: WorkerKey, worker: Worker, { exited, released }: ProcEnd, reason: StopReason, first?: Promise<void>) {
    retiringWorkers.add(worker)
    awaitRelease(released)
    const stopped = (async () => {
      await first
      await drained(worker, exited)
      const exit = await stopProcess(worker, exited, stopOptions())
      const current = slots.get(key)
      const superseded = current !== undefined && current.gen !== worker.gen
      if (!superseded) slots.delete(key)
      log.info({ orgId: worker.orgId, pluginId: worker.pluginId, gen: worker.gen, reason, superseded }, 'worker stopped')
      emit({ type: 'stopped', orgId: worker.orgId, pluginId: worker.pluginId, gen: worker.gen, reason, exit, superseded })
    })()
    retiring.add(stopped)
    void stopped.finally(() => {
      retiring.delete(stopped)
      retiringWorkers.delete(worker)
    })
    return stopped
  }

  function roll(pluginId: string, reason: 'replaced' | 'removed'): number {
    rollsOf.set(pluginId, (rollsOf.get(pluginId) ?? 0) + 1) // first: refills of its old policy are refused from here on
    sandbox.forget(pluginId)
    prewarm?.discard((policy) => policy.pluginId === pluginId)
    let rolled = 0
    for (const [key, slot] of slots) {
      if (splitWorkerKey(key).pluginId !== pluginId) continue
      if (slot.state === 'ready') {
        void retire(key, slot, reason)
        rolled++
      } else if (slot.state === 'starting') {
        slot.isRolled = true
        rolled++
      } else if (slot.state === 'error') {
        slots.delete(key) // the backoff the old code earned
      }
    }
    if (rolled > 0) log.info({ pluginId, reason, workers: rolled }, 'rolling the workers of a plugin')
    return rolled
  }

  // CONTRACT.md §5: in-flight requests finish before /disable, bounded by drainTimeoutMs; a crash ends the wait.
  async function drained(worker: Worker, exited: Promise<ExitInfo>): Promise<void> {
    if (isDrained(worker)) return
    const idle = new Promise<void>((resolve) => drainWaiters.set(worker, resolve))
    await withDeadline(clock, config.drainTimeoutMs, () => Promise.race([idle, exited])).catch(() => {
      log.warn(
        { orgId: worker.orgId, pluginId: worker.pluginId, inFlight: worker.inFlight - worker.tunnels },
        'drain timed out; stopping anyway',
      )
    })
    drainWaiters.delete(worker)
  }

  function awaitRelease(released: Promise<void>): void {
    freeing.add(released)
    void released.finally(() => freeing.delete(released))
  }

  function onExit(key: WorkerKey, worker: Worker, launched: Launched, exit: ExitInfo): void {
    const slot = slots.get(key)
    if (slot?.state !== 'ready' || slot.worker !== worker) return // a planned stop, or superseded
    slot.cancelIdle()
    slots.delete(key)
    awaitRelease(launched.released)
    void worker.dispatcher.destroy()
    const error = describeCrash(exit, launched.stderrTail(), config)
    log.warn({ orgId: worker.orgId, pluginId: worker.pluginId, gen: worker.gen, ...exit, error }, 'worker exited unexpectedly')
    emit({
      type: 'stopped',
      orgId: worker.orgId,
      pluginId: worker.pluginId,
      gen: worker.gen,
      reason: 'crashed',
      exit,
      error,
      superseded: false,
    })
  }

  // MAX_WORKERS and the per-org cap: evict the least recently used idle worker, or refuse.
  function makeRoom(orgId: string): void {
    const live = () => [...slots.values()].filter((s) => s.state === 'starting' || s.state === 'ready')
    // Called before the new slot exists: make room for one more. Recounted after each eviction.
    if (live().length >= config.maxWorkers) evictIdle(live(), 'MAX_WORKERS')
    const orgLive = live().filter((s) => (s.state === 'ready' ? s.worker.orgId : s.orgId) === orgId)
    if (orgLive.length >= config.maxWorkersPerOrg) evictIdle(orgLive, 'MAX_WORKERS_PER_ORG')
  }

  function evictIdle(candidates: Slot[], limit: string): void {
    let lru: Extract<Slot, { state: 'ready' }> | undefined
    for (const s of candidates) {
      if (s.state === 'ready' && s.worker.inFlight === 0 && (!lru || s.worker.lastActiveAt < lru.worker.lastActiveAt)) lru = s
    }
    if (!lru) {
      throw new GatewayError('CAPACITY_EXHAUSTED', 503, `${limit} reached and no worker is idle`, { retryAfterSeconds: 1 })
    }
    void retire(lru.worker.key, lru, 'evicted')
  }

  function portsInUse(): number[] {
    const ports: number[] = []
    for (const s of slots.values()) if (s.state === 'ready' || s.state === 'stopping') ports.push(s.worker.port)
    return ports
  }

  function stopOptions() {
    return { clock, disableTimeoutMs: config.disableTimeoutMs, stopTimeoutMs: config.stopTimeoutMs }
  }

  async function stop(orgId: string, pluginId: string, reason: StopReason = 'admin'): Promise<void> {
    const key = workerKey(orgId, pluginId)
    const slot = slots.get(key)
    if (!slot) return
    if (slot.state === 'ready') return retire(key, slot, reason)
    if (slot.state === 'stopping') return slot.stopped
    if (slot.state === 'error') {
      slots.delete(key)
      return
    }
    // Starting: let the start settle, then stop what it produced.
    await slot.ready.catch(() => {})
    return stop(orgId, pluginId, reason)
  }

  /**
   * Every process of the pool but the prewarmed runners: each key's slot, then what a roll left running
   * beside it (a start of the old code, a worker draining), which the slot's `replacing` names.
   */
  function list(): WorkerInfo[] {
    const current = [...slots].map(([key, s]) => slotInfo(key, s))
    const older: WorkerInfo[] = []
    for (const s of starts) if (slots.get(s.key) !== s) older.push(slotInfo(s.key, s))
    for (const w of retiringWorkers) {
      const slot = slots.get(w.key)
      if (slot?.state !== 'stopping' || slot.worker !== w) older.push(workerInfo(w, 'stopping'))
    }
    for (const info of current) {
      for (const o of older) {
        if (o.orgId !== info.orgId || o.pluginId !== info.pluginId || o.gen >= info.gen) continue
        info.replacing = Math.max(info.replacing ?? 0, o.gen)
      }
    }
    return [...current, ...older]
  }

  function slotInfo(key: WorkerKey, s: Slot): WorkerInfo {
    if (s.state === 'ready' || s.state === 'stopping') return workerInfo(s.worker, s.state)
    return {
      ...splitWorkerKey(key),
      gen: s.gen,
      state: s.state,
      sdkVersion: null,
      pid: null,
      port: null,
      startedAt: null,
      lastActivityAt: null,
      inFlight: 0,
      tunnels: 0,
      lastError: s.state === 'error' ? s.error.message : null,
      replacing: null,
    }
  }

  function workerInfo(w: Worker, state: 'ready' | 'stopping'): WorkerInfo {
    return {
      orgId: w.orgId,
      pluginId: w.pluginId,
      gen: w.gen,
      state,
      sdkVersion: w.sdkVersion,
      pid: w.pid,
      port: w.port,
      startedAt: w.startedAt,
      lastActivityAt: w.lastActiveAt,
      inFlight: w.inFlight,
      tunnels: w.tunnels,
      lastError: null,
      replacing: null,
    }
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      const keys = [...slots.keys()].map(splitWorkerKey)
      await Promise.all([prewarm?.close(), ...keys.map((k) => stop(k.orgId, k.pluginId, 'shutdown'))])
      // A start sees `closing` and stops what it made, or hands it to `retiring` (rolled).
      await Promise.all([...starts].map((start) => start.ready.catch(() => {})))
      await Promise.all([...retiring])
      await sandbox.close()
    })()
    return closing
  }

  function peek(orgId: string, pluginId: string): Worker | undefined {
    const slot = slots.get(workerKey(orgId, pluginId))
    return slot?.state === 'ready' ? slot.worker : undefined
  }

  return {
    acquire,
    leaseReady(orgId, pluginId) {
      const slot = slots.get(workerKey(orgId, pluginId))
      return slot?.state === 'ready' && !closing ? lease(slot.worker, null) : undefined
    },
    peek,
    async settled(orgId, pluginId) {
      const slot = slots.get(workerKey(orgId, pluginId))
      if (slot?.state === 'starting') await slot.ready.catch(() => {})
      return peek(orgId, pluginId)
    },
    stop,
    roll,
    list,
    queued() {
      let n = 0
      for (const waiting of pendingByOrg.values()) n += waiting
      return n
    },
    prewarmed: () => prewarm?.ready() ?? 0,
    subscribe(listener) {
      listeners.push(listener)
      return () => {
        const at = listeners.indexOf(listener)
        if (at >= 0) listeners.splice(at, 1)
      }
    },
    close,
  }
}

/** What the operator reads in lastError after a crash; a heap-limit death is named as such. */
function describeCrash(exit: ExitInfo, stderrTail: string, config: Pick<PoolConfig, 'maxOldSpaceMb' | 'sandbox'>): string {
  const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`
  if (/heap out of memory|Reached heap limit/i.test(stderrTail)) {
    return `worker ran out of memory${config.maxOldSpaceMb ? ` (heap limit ${config.maxOldSpaceMb} MB)` : ''} and exited (${how})`
  }
  if (exit.signal === 'SIGXCPU' && config.sandbox.cpuSeconds !== undefined) {
    return `worker used up its CPU time (WORKER_CPU_SECONDS ${config.sandbox.cpuSeconds} s) and exited (${how})`
  }
  const lastLine = stderrTail.split('\n').filter(Boolean).slice(-1)[0]
  return `worker exited unexpectedly (${how})${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}`
}
