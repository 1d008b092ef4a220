import type { CatalogEntry } from '../catalog/index.js'
import type { Clock, Logger } from '../core/index.js'
import type { CatalogGenerations, CatalogRepo } from '../db/index.js'
import type { CatalogChanges, Registry } from '../registry/index.js'
import type { WorkerPool } from '../workers/index.js'
import type { Targets } from './targets.js'

export interface PluginCatalogDeps {
  registry: Registry
  targets: Targets
  pool: Pick<WorkerPool, 'roll'>
  /** Scans the plugin directories (catalog/ over PLUGINS_DIR); injected, as it reads the disk. */
  scan: () => Promise<readonly CatalogEntry[]>
  clock: Clock
  log: Logger
  /**
   * Several gateways on one database: each rescan and restart is counted there, and every gateway
   * follows the counts, rescanning its own directories or rolling its own workers of the plugin.
   */
  cluster?: {
    repo: CatalogRepo
    /** The counts as read before this gateway's first scan: what that scan has covered. */
    seen: CatalogGenerations
    /** How often the counts are read (HEARTBEAT_MS). */
    followMs: number
  }
}

/** Plugin code that changes under a running gateway (DESIGN.md: worker lifecycle): rescans and restarts. */
export interface PluginCatalog {
  /**
   * Scans the plugin directories again and applies what changed: the workers of changed plugins roll
   * onto the new code, those of removed ones drain and stop; an invalid directory leaves the version
   * it had serving. Every other gateway on the database follows.
   */
  rescan(): Promise<CatalogChanges>
  /** Rolls every worker of a plugin, on every gateway (a dependency changed that the checksum does not cover). */
  restart(pluginId: string): Promise<{ pluginId: string; workers: number }>
  /** Stops following the other gateways; waits for a scan under way. */
  close(): Promise<void>
}

export function createPluginCatalog(deps: PluginCatalogDeps): PluginCatalog {
  const { registry, pool, log, cluster } = deps
  const seen = cluster && { rescans: cluster.seen.rescans, restarts: new Map(cluster.seen.restarts) }
  let queued: Promise<CatalogChanges> | null = null
  let last: Promise<unknown> = Promise.resolve()
  let cancelFollow = () => {}
  let closed = false

  async function scanAndApply(): Promise<CatalogChanges> {
    const changes = await registry.load(await deps.scan())
    for (const id of [...changes.changed, ...changes.added]) pool.roll(id, 'replaced')
    for (const id of changes.removed) pool.roll(id, 'removed')
    const { added, changed, removed } = changes
    const invalid = changes.invalid.map((p) => p.id)
    if (added.length + changed.length + removed.length > 0) log.info({ added, changed, removed, invalid }, 'plugins rescanned')
    return changes
  }

  /**
   * One scan at a time. One asked for while a scan runs is made after it (files may have changed
   * since that one read them), and shared by everyone who asks meanwhile.
   */
  function scanInTurn(): Promise<CatalogChanges> {
    queued ??= last.then(() => {
      queued = null
      return scanAndApply()
    })
    last = queued.catch(() => {})
    return queued
  }

  async function follow(): Promise<void> {
    if (!cluster || !seen) return
    const counts = await cluster.repo.generations()
    if (counts.rescans > seen.rescans) {
      // Counted as seen once applied: a scan that failed (a directory unreadable for a moment) is tried again next turn.
      await scanInTurn()
      seen.rescans = Math.max(seen.rescans, counts.rescans)
    }
    for (const [pluginId, restarts] of counts.restarts) {
      if (restarts <= (seen.restarts.get(pluginId) ?? 0)) continue
      seen.restarts.set(pluginId, restarts)
      pool.roll(pluginId, 'replaced')
    }
  }

  if (cluster) {
    const tick = () => {
      void follow()
        .catch((err: unknown) => log.warn({ err }, 'following the catalog of the other gateways failed'))
        .finally(() => {
          if (!closed) cancelFollow = deps.clock.setTimer(cluster.followMs, tick)
        })
    }
    cancelFollow = deps.clock.setTimer(cluster.followMs, tick)
  }

  return {
    async rescan() {
      // Counted before this gateway scans, so that scan starts after every rescan counted before:
      // those rescans' file changes are on disk by then, and this gateway need not follow them too.
      if (cluster && seen) seen.rescans = Math.max(seen.rescans, await cluster.repo.countRescan())
      return scanInTurn()
    },

    async restart(pluginId) {
      deps.targets.plugin(pluginId)
      if (cluster && seen) {
        const restarts = await cluster.repo.countRestart(pluginId)
        seen.restarts.set(pluginId, Math.max(seen.restarts.get(pluginId) ?? 0, restarts))
      }
      return { pluginId, workers: pool.roll(pluginId, 'replaced') }
    },

    async close() {
      closed = true
      cancelFollow()
      await last
    },
  }
}
