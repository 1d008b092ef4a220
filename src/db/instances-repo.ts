import { and, asc, eq, inArray, isNull, or, sql } from 'drizzle-orm'
import type { BatchItem } from 'drizzle-orm/batch'
import type { SdkVersion } from '../contract/index.js'
import type { Clock } from '../core/index.js'
import { GatewayError, workerKey } from '../core/index.js'
import { withBusyRetry } from './busy.js'
import { pluginInstances } from './schema.js'
import type { AuthState, InstanceConfig, PluginInstanceRow, RuntimeState } from './schema.js'
import type { Database } from './types.js'

export interface InstancePatch {
  enabled?: boolean
  config?: InstanceConfig
  /** null removes the stored credentials. */
  authState?: AuthState | null
}

/** What a row stores of an org's secrets (config fields, auth credentials), sealed or not. */
export interface StoredSecrets {
  config: InstanceConfig
  authState: AuthState | null
}

/** Fields left undefined are kept; null clears a nullable column. */
export interface RuntimePatch {
  runtimeState: RuntimeState
  lastError?: string | null
  /** Defaults to null when the new state is `stopped` or `error` (no live process). */
  pid?: number | null
  /** Defaults to null when the new state is `stopped` or `error`. */
  port?: number | null
  sdkVersion?: SdkVersion
  /** Clock milliseconds. */
  lastStartedAt?: number
  ownerGatewayId?: string | null
  /** Added to the restart counter (crash restarts). */
  restartsIncrement?: number
  /**
   * Fencing in a cluster: write only while the row names this gateway as owner (or none), so a
   * gateway that lost a worker's lease cannot overwrite what the new owner recorded.
   */
  onlyIfOwner?: string
}

export interface ActivityEntry {
  orgId: string
  pluginId: string
  /** Clock milliseconds of the last request seen. */
  at: number
}

export interface ResetOrphanedOptions {
  /**
   * Reset only rows owned by these gateways. Omit on a single-host deployment (every row a
   * previous process left live is orphaned); several gateways sharing one database must pass
   * only the ids of gateways known to be dead, or they would reset each other's workers.
   */
  ownerGatewayIds?: readonly string[]
  /** Rows to leave as they are although they look orphaned (their worker is still someone's). */
  keep?: (row: PluginInstanceRow) => Promise<boolean>
}

export interface InstancesRepo {
  get(orgId: string, pluginId: string): Promise<PluginInstanceRow | undefined>
  list(): Promise<PluginInstanceRow[]>
  listByOrg(orgId: string): Promise<PluginInstanceRow[]>
  /** Creates the row (disabled, empty config, runtime stopped) or updates the given fields. */
  upsert(orgId: string, pluginId: string, patch?: InstancePatch): Promise<PluginInstanceRow>
  /**
   * Writes `next` only while the row still stores `expected` (compared as JSON): a start-up
   * migration never overwrites a change another gateway made meanwhile. Undefined when it had.
   */
  replaceSecrets(orgId: string, pluginId: string, expected: StoredSecrets, next: StoredSecrets): Promise<PluginInstanceRow | undefined>
  /** Returns true when a row was deleted. */
  remove(orgId: string, pluginId: string): Promise<boolean>
  /** Records a runtime transition; undefined when the instance does not exist. */
  setRuntime(orgId: string, pluginId: string, patch: RuntimePatch): Promise<PluginInstanceRow | undefined>
  /**
   * Persists lastActivityAt for many instances in ONE batch (DESIGN.md: no write per request).
   * A timestamp never moves backwards, so flushes from several gateways can interleave.
   */
  touchActivity(entries: readonly ActivityEntry[]): Promise<void>
  /**
   * Rows a dead gateway left starting/ready/stopping become stopped with pid/port cleared.
   * Returns the rows as they were, so the caller may kill the recorded pids.
   */
  resetOrphanedRuntime(opts?: ResetOrphanedOptions): Promise<PluginInstanceRow[]>
}

const LIVE_STATES = ['starting', 'ready', 'stopping'] as const satisfies readonly RuntimeState[]

export function createInstancesRepo(db: Database, clock: Clock): InstancesRepo {
  const write = <T>(fn: () => Promise<T>) => withBusyRetry(fn, { clock })
  const now = () => new Date(clock.now())
  const key = (orgId: string, pluginId: string) => and(eq(pluginInstances.orgId, orgId), eq(pluginInstances.pluginId, pluginId))

  return {
    get: async (orgId, pluginId) => db.select().from(pluginInstances).where(key(orgId, pluginId)).get(),

    list: () => db.select().from(pluginInstances).orderBy(asc(pluginInstances.orgId), asc(pluginInstances.pluginId)).all(),

    listByOrg: (orgId) =>
      db.select().from(pluginInstances).where(eq(pluginInstances.orgId, orgId)).orderBy(asc(pluginInstances.pluginId)).all(),

    upsert: (orgId, pluginId, patch = {}) =>
      write(async () => {
        const at = now()
        const changes = {
          ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
          ...(patch.config !== undefined ? { config: patch.config } : {}),
          ...(patch.authState !== undefined ? { authState: patch.authState } : {}),
        }
        const [row] = await db
          .insert(pluginInstances)
          .values({ orgId, pluginId, ...changes, createdAt: at, updatedAt: at })
          .onConflictDoUpdate({
            target: [pluginInstances.orgId, pluginInstances.pluginId],
            set: { ...changes, updatedAt: at },
          })
          .returning()
        // An upsert with RETURNING always yields the row it inserted or updated.
        if (!row) throw new GatewayError('INTERNAL', 500, `upsert of ${orgId}/${pluginId} returned no row`)
        return row
      }),

    replaceSecrets: (orgId, pluginId, expected, next) =>
      write(async () => {
        const { config, authState } = pluginInstances
        const [row] = await db
          .update(pluginInstances)
          .set({ config: next.config, authState: next.authState, updatedAt: now() })
          .where(
            and(
              key(orgId, pluginId),
              sql`json(${config}) = json(${JSON.stringify(expected.config)})`,
              expected.authState === null ? isNull(authState) : sql`json(${authState}) = json(${JSON.stringify(expected.authState)})`,
            ),
          )
          .returning()
        return row
      }),

    remove: (orgId, pluginId) =>
      write(async () => {
        const rows = await db.delete(pluginInstances).where(key(orgId, pluginId)).returning({ orgId: pluginInstances.orgId })
        return rows.length > 0
      }),

    setRuntime: (orgId, pluginId, patch) =>
      write(async () => {
        const isDead = patch.runtimeState === 'stopped' || patch.runtimeState === 'error'
        const pid = patch.pid !== undefined ? patch.pid : isDead ? null : undefined
        const port = patch.port !== undefined ? patch.port : isDead ? null : undefined
        const [row] = await db
          .update(pluginInstances)
          .set({
            runtimeState: patch.runtimeState,
            ...(patch.lastError !== undefined ? { lastError: patch.lastError } : {}),
            ...(pid !== undefined ? { pid } : {}),
            ...(port !== undefined ? { port } : {}),
            ...(patch.sdkVersion !== undefined ? { sdkVersion: patch.sdkVersion } : {}),
            ...(patch.lastStartedAt !== undefined ? { lastStartedAt: new Date(patch.lastStartedAt) } : {}),
            ...(patch.ownerGatewayId !== undefined ? { ownerGatewayId: patch.ownerGatewayId } : {}),
            ...(patch.restartsIncrement ? { restarts: sql`${pluginInstances.restarts} + ${patch.restartsIncrement}` } : {}),
            updatedAt: now(),
          })
          .where(
            patch.onlyIfOwner === undefined
              ? key(orgId, pluginId)
              : and(
                  key(orgId, pluginId),
                  or(isNull(pluginInstances.ownerGatewayId), eq(pluginInstances.ownerGatewayId, patch.onlyIfOwner)),
                ),
          )
          .returning()
        return row
      }),

    touchActivity: async (entries) => {
      // Several entries for one key collapse to the latest, so the batch has one write per key.
      const latest = new Map<string, ActivityEntry>()
      for (const e of entries) {
        const k = workerKey(e.orgId, e.pluginId)
        const seen = latest.get(k)
        if (!seen || seen.at < e.at) latest.set(k, e)
      }
      const updates: BatchItem<'sqlite'>[] = [...latest.values()].map((e) =>
        db
          .update(pluginInstances)
          .set({ lastActivityAt: sql`max(coalesce(${pluginInstances.lastActivityAt}, 0), ${e.at})` })
          .where(key(e.orgId, e.pluginId)),
      )
      const [first, ...rest] = updates
      if (!first) return
      await write(() => db.batch([first, ...rest]))
    },

    resetOrphanedRuntime: async (opts = {}) => {
      const owners = opts.ownerGatewayIds
      if (owners !== undefined && owners.length === 0) return []
      const match = and(
        inArray(pluginInstances.runtimeState, LIVE_STATES),
        owners === undefined ? undefined : inArray(pluginInstances.ownerGatewayId, [...owners]),
      )
      // Each row is reset by one statement that also checks it is unchanged since it was read, so
      // the rows returned are exactly those reset (a live gateway may claim one meanwhile). No
      // read-then-write transaction: under contention that fails at once with SQLITE_BUSY_SNAPSHOT.
      const reset: PluginInstanceRow[] = []
      for (const row of await db.select().from(pluginInstances).where(match).all()) {
        if (await opts.keep?.(row)) continue
        const [done] = await write(() =>
          db
            .update(pluginInstances)
            .set({ runtimeState: 'stopped', pid: null, port: null, updatedAt: now() })
            .where(
              and(
                key(row.orgId, row.pluginId),
                eq(pluginInstances.runtimeState, row.runtimeState),
                row.pid === null ? isNull(pluginInstances.pid) : eq(pluginInstances.pid, row.pid),
                row.ownerGatewayId === null
                  ? isNull(pluginInstances.ownerGatewayId)
                  : eq(pluginInstances.ownerGatewayId, row.ownerGatewayId),
              ),
            )
            .returning({ orgId: pluginInstances.orgId }),
        )
        if (done) reset.push(row)
      }
      return reset
    },
  }
}
