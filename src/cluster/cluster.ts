import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Dispatcher } from 'undici'
import { z } from 'zod'
import type { Clock, ErrorCode, Logger, WorkerKey } from '../core/index.js'
import { abortable, errorText, GatewayError, isErrorCode, sleep, splitWorkerKey, workerKey } from '../core/index.js'
import type { ClusterRepo, LeaseRef, WorkerLeaseRow } from '../db/index.js'
import type { ControlResult, PoolEvent, WorkerPool } from '../workers/index.js'
import { type PeerWorkers, WorkerListings } from './protocol.js'

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

/** How this gateway reaches its peers: the Node entry's is undici (cluster/node). */
export interface PeerTransport {
  /** Keep-alive connection pool to a peer gateway for forwarded requests (internal calls have their own). */
  dispatcher(url: string): Dispatcher
  /** One JSON call to a peer's /internal/*: a POST with a payload, a GET without one; marked as from a peer that saw `generation`. */
  call(url: string, path: string, generation: number, payload?: unknown): Promise<ControlResult>
  /** Closes every connection. */
  close(): Promise<void>
}

/**
 * Several gateways on one database (CLUSTER_SECRET): where the worker of a key lives (the holder of its
 * lease, fenced by a generation), and the calls that reach it there. The one view of the cluster the
 * HTTP layer and the Node entry share.
 */
export interface Cluster {
  readonly gatewayId: string
  /** What every gateway of the cluster proves itself with. */
  readonly secret: string
  /** Places the key, taking its lease when free or expired. Single-flight per key; cached. */
  place(orgId: string, pluginId: string): Promise<Placement>
  /**
   * For a request a peer forwarded here (hop limit reached): it must be served locally, so the lease
   * is taken or verified; seenGeneration is what the peer believed, to detect that we went stale.
   */
  claim(orgId: string, pluginId: string, seenGeneration: number | undefined): Promise<Placement>
  /** The owner we had cached said it no longer owns the key: forget it and place again. */
  ownerChanged(orgId: string, pluginId: string): Promise<Placement>
  /**
   * The owner did not answer (or, `isDraining`, refused because it shuts down): forget it and place
   * again once its lease lapses, or at once when it is seen alive (bounded). One wait per owner and key,
   * whoever asks; signal lets one caller leave it.
   */
  ownerUnreachable(orgId: string, pluginId: string, owner: PeerOwner, signal?: AbortSignal, isDraining?: boolean): Promise<Placement>
  /** Keep-alive connection pool to a peer gateway's internal URL. */
  peerDispatcher(url: string): Dispatcher
  /** Every live peer's workers, asked in parallel; a peer that does not answer is listed with its error. */
  peerWorkers(): Promise<PeerWorkers[]>
  /** A control call run on the worker's owner when another gateway owns it; null when this one does. */
  remoteControl(orgId: string, pluginId: string, method: 'GET' | 'POST', path: string, payload: unknown): Promise<ControlResult | null>
  /** Stops the worker on its owner when another gateway owns it; false when this one does. */
  remoteStop(orgId: string, pluginId: string): Promise<boolean>
  /** Tells every other gateway that an instance changed, so owners apply it to their workers. */
  instanceChanged(orgId: string, pluginId: string): Promise<void>
  /** Registers this gateway and starts heartbeat and lease renewal. */
  start(selfUrl: string): Promise<void>
  /** Stops the timers, deregisters and closes the peer connections. Leases were released as the workers stopped. */
  close(): Promise<void>
}

export interface ClusterDeps {
  config: ClusterConfig
  secret: string
  repo: ClusterRepo
  /** The local workers: a stopped one gives its lease back, a lost lease stops one. */
  pool: WorkerPool
  transport: PeerTransport
  clock: Clock
  log: Logger
  /** True once this gateway shuts down: it gives its keys back as its workers start to drain, and takes none. */
  draining?: () => boolean
}

const OwnerError = z.object({ error: z.object({ code: z.string(), message: z.string() }) })

/**
 * The owner's own error, passed on as the owner gave it (status, code, Retry-After): a 503 there is a
 * 503 here. An answer that is not one of our errors is the owner failing: 502.
 */
function ownerRefusal(gatewayId: string, reply: ControlResult): GatewayError {
  const parsed = OwnerError.safeParse(reply.body)
  const known = parsed.success && isErrorCode(parsed.data.error.code) && reply.status >= 400 && reply.status <= 599
  if (!known) return new GatewayError('UPSTREAM_ERROR', 502, `owner gateway ${gatewayId} answered ${reply.status}`)
  const { code, message } = parsed.data.error
  return new GatewayError(code as ErrorCode, reply.status as ContentfulStatusCode, message, { retryAfterSeconds: reply.retryAfterSeconds })
}

export function createCluster(deps: ClusterDeps): Cluster {
  const { config, repo, pool, transport, clock, log } = deps
  const self = config.gatewayId
  // key → the lease generation we hold, and since when (a lease whose worker never came is given back)
  const owned = new Map<WorkerKey, { generation: number; since: number }>()
  const remote = new Map<WorkerKey, { owner: PeerOwner; until: number }>()
  const placing = new Map<WorkerKey, Promise<Placement>>()
  // Waits on an owner that did not answer, per key, owner and generation: shared by every request that hit it.
  const waitingOut = new Map<string, Promise<Placement>>()
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
    if (deps.draining?.()) return singleFlight(key, () => placeWhileDraining(key))
    return singleFlight(key, async () => fromLease(key, await repo.acquireLease(orgId, pluginId, self, config.leaseTtlMs)))
  }

  /** Shutting down, a gateway sends a request to the key's live owner, if another gateway is one, and takes no key itself. */
  async function placeWhileDraining(key: WorkerKey): Promise<Placement> {
    const { orgId, pluginId } = splitWorkerKey(key)
    const row = await repo.lease(orgId, pluginId)
    if (row && row.ownerGatewayId !== self && row.expiresAt.getTime() > clock.now()) return fromLease(key, row)
    throw new GatewayError('SHUTTING_DOWN', 503, 'gateway is shutting down', { retryAfterSeconds: 1 })
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

  function ownerUnreachable(orgId: string, pluginId: string, owner: PeerOwner, signal?: AbortSignal, isDraining = false) {
    const key = workerKey(orgId, pluginId)
    remote.delete(key)
    addresses.delete(owner.gatewayId)
    const id = `${key}\0${owner.gatewayId}\0${owner.generation}\0${isDraining}`
    let wait = waitingOut.get(id)
    if (!wait) {
      wait = waitOut(key, owner, isDraining).finally(() => waitingOut.delete(id))
      waitingOut.set(id, wait)
    }
    return abortable(wait, signal)
  }

  async function waitOut(key: WorkerKey, owner: PeerOwner, isDraining: boolean): Promise<Placement> {
    const { orgId, pluginId } = splitWorkerKey(key)
    const deadline = clock.now() + config.leaseTtlMs + config.heartbeatMs
    let firstHeartbeat: number | undefined
    for (;;) {
      const row = await repo.lease(orgId, pluginId)
      const stillHeld = row && row.ownerGatewayId === owner.gatewayId && row.generation === owner.generation
      if (!stillHeld || row.expiresAt.getTime() <= clock.now()) {
        return fromLease(key, await repo.acquireLease(orgId, pluginId, self, config.leaseTtlMs))
      }
      const gateway = await repo.gateway(owner.gatewayId)
      if (gateway) addresses.set(owner.gatewayId, gateway.address)
      // The owner restarted under its id (a stable GATEWAY_ID), took its lease back at the same
      // generation and keeps renewing it: it is alive, at the address it registered since.
      if (gateway && gateway.address !== owner.url) return fromLease(key, row)
      // It heartbeated since it failed us (a reset connection, a blip): alive, so asked again, not
      // waited out. Compared with its own earlier heartbeat, so no two hosts' clocks are compared. One
      // that shuts down heartbeats too, and is waited out: it lets go of the key.
      const heartbeat = gateway?.heartbeatAt.getTime()
      if (!isDraining && heartbeat !== undefined && firstHeartbeat !== undefined && heartbeat > firstHeartbeat) return fromLease(key, row)
      firstHeartbeat ??= heartbeat
      if (clock.now() >= deadline) {
        throw new GatewayError('WORKER_UNAVAILABLE', 503, `owner gateway ${owner.gatewayId} is unreachable`, {
          retryAfterSeconds: 1,
        })
      }
      // Its lease still runs: look again at its next heartbeat, or once the lease lapsed.
      await sleep(clock, Math.max(1, Math.min(config.heartbeatMs, row.expiresAt.getTime() - clock.now() + 1, deadline - clock.now())))
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

  async function peers(): Promise<Array<{ gatewayId: string; url: string }>> {
    const rows = await repo.liveGateways(config.gatewayTtlMs)
    return rows.filter((r) => r.id !== self).map((r) => ({ gatewayId: r.id, url: r.address }))
  }

  async function workersOf(peer: { gatewayId: string; url: string }): Promise<PeerWorkers> {
    try {
      const reply = await transport.call(peer.url, '/internal/workers', 0)
      const parsed = WorkerListings.safeParse(reply.body)
      if (reply.status !== 200 || !parsed.success)
        return { gatewayId: peer.gatewayId, error: `answered ${reply.status} without a worker list` }
      return { gatewayId: peer.gatewayId, workers: parsed.data.workers }
    } catch (err) {
      return { gatewayId: peer.gatewayId, error: errorText(err) }
    }
  }

  // A superseded stop is not the key's: the lease now covers the generation that replaced it. At
  // shutdown the key is given back as its worker starts to drain, not once it stopped: a peer starts the
  // next generation for new requests while those in flight finish here.
  const unsubscribe = pool.subscribe((event: PoolEvent) => {
    if ((event.type === 'stopped' && !event.superseded) || event.type === 'start-failed') release(event.orgId, event.pluginId)
    else if (event.type === 'stopping' && event.reason === 'shutdown') release(event.worker.orgId, event.worker.pluginId)
  })

  return {
    gatewayId: self,
    secret: deps.secret,
    place,
    claim,
    ownerChanged,
    ownerUnreachable,
    peerDispatcher: transport.dispatcher,
    peerWorkers: async () => Promise.all((await peers()).map(workersOf)),

    async remoteControl(orgId, pluginId, method, path, payload) {
      let placement = await place(orgId, pluginId)
      for (let attempt = 0; placement.kind === 'remote'; attempt++) {
        const { owner } = placement
        const reply = await transport
          .call(owner.url, `/internal/orgs/${orgId}/plugins/${pluginId}/control`, owner.generation, { method, path, payload })
          .catch((err: unknown) => {
            throw new GatewayError('UPSTREAM_ERROR', 502, `owner gateway ${owner.gatewayId} failed: ${errorText(err)}`, { cause: err })
          })
        if (reply.status === 200) return reply.body as ControlResult
        const refusal = ownerRefusal(owner.gatewayId, reply)
        // The owner we had cached has handed the key on: ask where it is now, once.
        if (refusal.code !== 'NOT_OWNER' || attempt > 0) throw refusal
        placement = await ownerChanged(orgId, pluginId)
      }
      return null
    },

    async remoteStop(orgId, pluginId) {
      // Only a read: stopping must not take a lease nobody holds.
      const lease = await repo.lease(orgId, pluginId)
      if (!lease || lease.ownerGatewayId === self || lease.expiresAt.getTime() <= clock.now()) return false
      const owner = await repo.gateway(lease.ownerGatewayId)
      if (!owner) return false
      const reply = await transport.call(owner.address, `/internal/orgs/${orgId}/plugins/${pluginId}/stop`, lease.generation, {})
      return (reply.body as { stopped?: boolean } | null)?.stopped === true
    },

    async instanceChanged(orgId, pluginId) {
      await Promise.all(
        (await peers()).map((peer) =>
          transport.call(peer.url, `/internal/orgs/${orgId}/plugins/${pluginId}/changed`, 0, {}).catch((err: unknown) => {
            // A dead peer has no worker to update; it reads the row afresh when it comes back.
            log.warn({ err, peer: peer.gatewayId, orgId, pluginId }, 'could not tell a peer about an instance change')
          }),
        ),
      )
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
      unsubscribe()
      for (const stop of stopTimers) stop()
      await Promise.all([...releasing])
      await repo.removeGateway(self).catch((err: unknown) => log.warn({ err }, 'failed to deregister gateway'))
      await transport.close()
    },
  }
}
