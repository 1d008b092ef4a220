import { sql } from 'drizzle-orm'
import type { Clock } from '../core/index.js'
import { withBusyRetry } from './busy.js'
import { catalogGenerations } from './schema.js'
import type { Database } from './types.js'

// The scope that counts rescans; every other scope is a plugin id (ids never hold '*').
const RESCANS = '*'

/** How many rescans, and restarts of each plugin, the gateways on the database have announced. */
export interface CatalogGenerations {
  rescans: number
  /** Plugin id → restarts of its workers. */
  restarts: Map<string, number>
}

export interface CatalogRepo {
  generations(): Promise<CatalogGenerations>
  /** Announces one more rescan, in one statement; returns the new count. */
  countRescan(): Promise<number>
  /** Announces one more restart of pluginId's workers; returns the new count. */
  countRestart(pluginId: string): Promise<number>
}

export function createCatalogRepo(db: Database, clock: Clock): CatalogRepo {
  const bump = (scope: string) =>
    withBusyRetry(
      async () => {
        const [row] = await db
          .insert(catalogGenerations)
          .values({ scope, generation: 1 })
          .onConflictDoUpdate({ target: catalogGenerations.scope, set: { generation: sql`${catalogGenerations.generation} + 1` } })
          .returning()
        if (!row) throw new Error(`catalog generation ${scope} was not written`)
        return row.generation
      },
      { clock },
    )

  return {
    async generations() {
      const rows = await db.select().from(catalogGenerations).all()
      const restarts = new Map(rows.filter((r) => r.scope !== RESCANS).map((r) => [r.scope, r.generation]))
      return { rescans: rows.find((r) => r.scope === RESCANS)?.generation ?? 0, restarts }
    },
    countRescan: () => bump(RESCANS),
    countRestart: (pluginId) => bump(pluginId),
  }
}
