import type { Clock, Logger, WorkerKey } from '../core/index.js'
import { GatewayError, sleep, splitWorkerKey, workerKey } from '../core/index.js'
import type { ClusterRepo, LeaseRef, WorkerLeaseRow } from '../db/index.js'
import type { PoolEvent, WorkerPool } from '../workers/index.js'

export interface ClusterConfig {
  gatewayId: string
  leaseTtlMs: number
  heartbeatMs: number
  gatewayTtlMs: number
}

export interface PeerOwner {
  gatewayId: string
  url: string
  generation: number
}

/** Where the worker of a key lives: here (we hold the lease) or on a peer gateway. */
export type Placement = { kind: 'local'; generation: number } | { kind: 'remote'; owner: PeerOwner }

export interface Cluster {
  readonly gatewayId: string
  /** Places the key, taking its lease when free or expired. Single-flight per key; cached. */
  place(orgId: string, pluginId: string): Promise<Placement>
  /**
   * For a request a peer forwarded here (hop limit reached): it must be served locally, so the lease
   * is taken or verified; seenGeneration is what the peer believed, to detect that we went stale.
   */
  claim(orgId: string, pluginId: string, seenGeneration: number | undefined): Promise<Placement>
  /** The owner we had cached said it no longer owns the key: forget it and place again. */
  ownerChanged(orgId: string, pluginId: string): Promise<Placement>
  /** The owner did not answer: forget it, wait (bounded) for its lease to lapse, and place again. */
  ownerUnreachable(orgId: string, pluginId: string, owner: PeerOwner, signal?: AbortSignal): Promise<Placement>
  /** Pool event sink: a stopped or failed worker gives its lease back. */
  onPoolEvent(event: PoolEvent): void
  /** Live peers (other gateways) and their internal URLs. */
  peers(): Promise<Array<{ gatewayId: string; url: string }>>
  /** Registers this gateway and starts heartbeat and lease renewal. */
  start(selfUrl: string): Promise<void>
  /** Stops the timers and deregisters. Leases were released as the workers stopped. */
  close(): Promise<void>
}

export interface ClusterDeps {
  config: ClusterConfig
  repo: ClusterRepo
  pool: WorkerPool
  clock: Clock
  log: Logger
}

export function createCluster(deps: ClusterDeps): Cluster {
  const { config, repo, pool, clock, log } = deps
  const self = config.gatewayId
  // key → the lease generation we hold, and since when (a lease whose worker never came is given back)
  const owned = new Map<WorkerKey, { generation: number; since: number }>()
  const remote = new Map<WorkerKey, { owner: PeerOwner; until: number }>()
  const placing = new Map<WorkerKey, Promise<Placement>>()
  const addresses = new Map<string, string>()
  const releasing = new Set<Promise<void>>()
  let selfUrl = ''
  let stopTimers: Array<() => void> = []
  let closed = false

  async function addressOf(gatewayId: string): Promise<string | undefined> {
    const known = addresses.get(gatewayId)
    if (known) return known
    const row = await repo.gateway(gatewayId)
    if (row) addresses.set(gatewayId, row.address)
    return row?.address
  }

  async function fromLease(key: WorkerKey, row: WorkerLeaseRow): Promise<Placement> {
    if (row.ownerGatewayId === self) {
      if (owned.get(key)?.generation !== row.generation) owned.set(key, { generation: row.generation, since: clock.now() })
      remote.delete(key)
      return { kind: 'local', generation: row.generation }
    }
    const url = await addressOf(row.ownerGatewayId)
    if (!url) {
      throw new GatewayError('WORKER_UNAVAILABLE', 503, `owner gateway ${row.ownerGatewayId} is not registered`, {
        retryAfterSeconds: Math.max(1, Math.ceil((row.expiresAt.getTime() - clock.now()) / 1000)),
      })
    }
    const owner = { gatewayId: row.ownerGatewayId, url, generation: row.generation }
    remote.set(key, { owner, until: row.expiresAt.getTime() })
    return { kind: 'remote', owner }
  }

  function singleFlight(key: WorkerKey, run: () => Promise<Placement>): Promise<Placement> {
    const running = placing.get(key)
    if (running) return running
    const p = run().finally(() => placing.delete(key))
    placing.set(key, p)
    return p
  }

  function place(orgId: string, pluginId: string): Promise<Placement> {
    const key = workerKey(orgId, pluginId)
    const held = owned.get(key)
    if (held) return Promise.resolve({ kind: 'local', generation: held.generation })
    const cached = remote.get(key)
    if (cached && clock.now() < cached.until) return Promise.resolve({ kind: 'remote', owner: cached.owner })
    return singleFlight(key, async () => fromLease(key, await repo.acquireLease(orgId, pluginId, self, config.leaseTtlMs)))
  }

  async function claim(orgId: string, pluginId: string, seenGeneration: number | undefined): Promise<Placement> {
    const key = workerKey(orgId, pluginId)
    const generation = owned.get(key)?.generation
    // A peer saw a newer generation than ours: we may have lost the lease without noticing yet.
    if (generation !== undefined && (seenGeneration === undefined || seenGeneration <= generation)) {
      return { kind: 'local', generation }
    }
    const placement = await singleFlight(key, async () => fromLease(key, await repo.acquireLease(orgId, pluginId, self, config.leaseTtlMs)))
    if (placement.kind === 'remote' && generation !== undefined) await loseLease(key, 'a newer generation owns it')
    return placement
  }

  function ownerChanged(orgId: string, pluginId: string): Promise<Placement> {
    remote.delete(workerKey(orgId, pluginId))
    return place(orgId, pluginId)
  }

  async function ownerUnreachable(orgId: string, pluginId: string, owner: PeerOwner, signal?: AbortSignal) {
    const key = workerKey(orgId, pluginId)
    remote.delete(key)
    addresses.delete(owner.gatewayId)
    const deadline = clock.now() + config.leaseTtlMs + config.heartbeatMs
    for (;;) {
      const row = await repo.lease(orgId, pluginId)
      const stillHeld = row && row.ownerGatewayId === owner.gatewayId && row.generation === owner.generation
      if (!stillHeld || row.expiresAt.getTime() <= clock.now()) {
        return fromLease(key, await repo.acquireLease(orgId, pluginId, self, config.leaseTtlMs))
      }
      if (clock.now() >= deadline) {
        throw new GatewayError('WORKER_UNAVAILABLE', 503, `owner gateway ${owner.gatewayId} is unreachable`, {
          retryAfterSeconds: 1,
        })
      }
      // The owner is gone but its lease still runs: wait for it to lapse rather than fail the request.
      await sleep(clock, Math.min(row.expiresAt.getTime() - clock.now() + 1, deadline - clock.now()), signal)
    }
  }

  async function loseLease(key: WorkerKey, why: string): Promise<void> {
    owned.delete(key)
    const { orgId, pluginId } = splitWorkerKey(key)
    log.warn({ orgId, pluginId, why }, 'lease lost; stopping the local worker')
    await pool.stop(orgId, pluginId, 'lease-lost')
  }

  function release(orgId: string, pluginId: string): void {
    const key = workerKey(orgId, pluginId)
    const generation = owned.get(key)?.generation
    if (generation === undefined) return
    owned.delete(key)
    const released = repo.releaseLease(self, { orgId, pluginId, generation }).catch((err: unknown) => {
      log.warn({ err, orgId, pluginId }, 'failed to release lease; it will expire')
    })
    releasing.add(released)
    void released.finally(() => releasing.delete(released))
  }

  async function renew(): Promise<void> {
    const live = new Set(pool.list().map((w) => workerKey(w.orgId, w.pluginId)))
    const leases: LeaseRef[] = []
    for (const [key, held] of owned) {
      // Placed here but no worker came of it (refused, or failed before the pool saw it): give it back.
      if (!live.has(key) && clock.now() - held.since > config.leaseTtlMs) {
        const { orgId, pluginId } = splitWorkerKey(key)
        release(orgId, pluginId)
      } else {
        leases.push({ ...splitWorkerKey(key), generation: held.generation })
      }
    }
    const lost = await repo.renewLeases(self, leases, config.leaseTtlMs)
    for (const l of lost) {
      const key = workerKey(l.orgId, l.pluginId)
      if (owned.get(key)?.generation === l.generation) await loseLease(key, 'renewal refused')
    }
  }

  function every(ms: number, task: () => Promise<void>, what: string): () => void {
    let cancel = () => {}
    const tick = () => {
      task()
        .catch((err: unknown) => log.warn({ err }, `${what} failed`))
        .finally(() => {
          if (!closed) cancel = clock.setTimer(ms, tick)
        })
    }
    cancel = clock.setTimer(ms, tick)
    return () => cancel()
  }

  return {
    gatewayId: self,
    place,
    claim,
    ownerChanged,
    ownerUnreachable,
    onPoolEvent(event) {
      // A superseded stop is not the key's: the lease now covers the generation that replaced it.
      if ((event.type === 'stopped' && !event.superseded) || event.type === 'start-failed') release(event.orgId, event.pluginId)
    },
    async peers() {
      const rows = await repo.liveGateways(config.gatewayTtlMs)
      return rows.filter((r) => r.id !== self).map((r) => ({ gatewayId: r.id, url: r.address }))
    },
    async start(url) {
      selfUrl = url
      await repo.heartbeat(self, selfUrl)
      stopTimers = [
        every(config.heartbeatMs, () => repo.heartbeat(self, selfUrl), 'heartbeat'),
        every(Math.max(100, Math.floor(config.leaseTtlMs / 3)), renew, 'lease renewal'),
      ]
    },
    async close() {
      closed = true
      for (const stop of stopTimers) stop()
      await Promise.all([...releasing])
      await repo.removeGateway(self).catch((err: unknown) => log.warn({ err }, 'failed to deregister gateway'))
    },
  }
}
