import { and, eq, gte, lt, or, sql } from 'drizzle-orm'
import type { Clock } from '../core/index.js'
import { withBusyRetry } from './busy.js'
import { gateways, workerLeases } from './schema.js'
import type { GatewayRow, WorkerLeaseRow } from './schema.js'
import type { Database } from './types.js'

export interface LeaseRef {
  orgId: string
  pluginId: string
  generation: number
}

export interface ClusterRepo {
  /** Registers the gateway (first call) and moves its heartbeat forward. */
  heartbeat(id: string, address: string): Promise<void>
  gateway(id: string): Promise<GatewayRow | undefined>
  /** Gateways whose heartbeat is younger than ttlMs. */
  liveGateways(ttlMs: number): Promise<GatewayRow[]>
  /** Ids of gateways whose heartbeat is older than ttlMs. */
  deadGatewayIds(ttlMs: number): Promise<string[]>
  removeGateway(id: string): Promise<void>
  lease(orgId: string, pluginId: string): Promise<WorkerLeaseRow | undefined>
  /**
   * Compare-and-set in one statement: takes the lease when it is free, expired or already ours.
   * A change of owner bumps the generation (the fencing token). Returns the lease as it stands
   * afterwards, whoever owns it.
   */
  acquireLease(orgId: string, pluginId: string, ownerId: string, ttlMs: number): Promise<WorkerLeaseRow>
  /** Extends the given leases of ownerId in one batch; returns those no longer ours (lost). */
  renewLeases(ownerId: string, leases: readonly LeaseRef[], ttlMs: number): Promise<LeaseRef[]>
  /** Expires the lease if ownerId still holds it at that generation; the generation is kept. */
  releaseLease(ownerId: string, lease: LeaseRef): Promise<void>
}

export function createClusterRepo(db: Database, clock: Clock): ClusterRepo {
  const write = <T>(fn: () => Promise<T>) => withBusyRetry(fn, { clock })
  const leaseKey = (orgId: string, pluginId: string) => and(eq(workerLeases.orgId, orgId), eq(workerLeases.pluginId, pluginId))
  const lease = (orgId: string, pluginId: string) => db.select().from(workerLeases).where(leaseKey(orgId, pluginId)).get()
  const heartbeatSince = (ttlMs: number) => new Date(clock.now() - ttlMs)

  return {
    heartbeat: (id, address) =>
      write(async () => {
        const at = new Date(clock.now())
        await db
          .insert(gateways)
          .values({ id, address, startedAt: at, heartbeatAt: at })
          .onConflictDoUpdate({ target: gateways.id, set: { address, heartbeatAt: at } })
      }),

    gateway: (id) => db.select().from(gateways).where(eq(gateways.id, id)).get(),

    liveGateways: (ttlMs) =>
      db
        .select()
        .from(gateways)
        .where(gte(gateways.heartbeatAt, heartbeatSince(ttlMs)))
        .all(),

    deadGatewayIds: async (ttlMs) =>
      (
        await db
          .select({ id: gateways.id })
          .from(gateways)
          .where(lt(gateways.heartbeatAt, heartbeatSince(ttlMs)))
          .all()
      ).map((r) => r.id),

    removeGateway: (id) =>
      write(async () => {
        await db.delete(gateways).where(eq(gateways.id, id))
      }),

    lease,

    acquireLease: (orgId, pluginId, ownerId, ttlMs) =>
      write(async () => {
        const now = clock.now()
        const expiresAt = new Date(now + ttlMs)
        const [taken] = await db
          .insert(workerLeases)
          .values({ orgId, pluginId, ownerGatewayId: ownerId, generation: 1, expiresAt })
          .onConflictDoUpdate({
            target: [workerLeases.orgId, workerLeases.pluginId],
            set: {
              ownerGatewayId: ownerId,
              generation: sql`case when ${workerLeases.ownerGatewayId} = ${ownerId} then ${workerLeases.generation} else ${workerLeases.generation} + 1 end`,
              expiresAt,
            },
            where: or(lt(workerLeases.expiresAt, new Date(now)), eq(workerLeases.ownerGatewayId, ownerId)),
          })
          .returning()
        if (taken) return taken
        const current = await lease(orgId, pluginId)
        // The row exists (the insert conflicted) and belongs to a live owner.
        if (!current) throw new Error(`lease ${orgId}/${pluginId} vanished during acquire`)
        return current
      }),

    renewLeases: async (ownerId, leases, ttlMs) => {
      if (leases.length === 0) return []
      const expiresAt = new Date(clock.now() + ttlMs)
      const updates = leases.map((l) =>
        db
          .update(workerLeases)
          .set({ expiresAt })
          .where(and(leaseKey(l.orgId, l.pluginId), eq(workerLeases.ownerGatewayId, ownerId), eq(workerLeases.generation, l.generation)))
          .returning({ orgId: workerLeases.orgId }),
      )
      const [first, ...rest] = updates
      if (!first) return []
      const results = await write(() => db.batch([first, ...rest]))
      return leases.filter((_, i) => (results[i]?.length ?? 0) === 0)
    },

    releaseLease: (ownerId, l) =>
      write(async () => {
        await db
          .update(workerLeases)
          .set({ expiresAt: new Date(0) })
          .where(and(leaseKey(l.orgId, l.pluginId), eq(workerLeases.ownerGatewayId, ownerId), eq(workerLeases.generation, l.generation)))
      }),
  }
}
