import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Client } from '@libsql/client'
// The sqlite3 entry's drizzle() only wraps the client it is given, whatever its transport; unlike
// the package's main entry it does not import the full client (see openDatabase).
import { drizzle } from 'drizzle-orm/libsql/sqlite3'
import { migrate } from 'drizzle-orm/libsql/migrator'
import type { Logger } from '../core/index.js'
import { GatewayError } from '../core/index.js'
import * as schema from './schema.js'
import type { Database } from './types.js'

export interface OpenDatabaseOptions {
  /**
   * `file:./data/gateway.db` (embedded, the default deployment) or `libsql://<db>.turso.io` /
   * `https://…` / `ws://…` for a remote libSQL server (sqld, Turso), which then needs authToken.
   * Only `file:` is exercised by the tests: no libSQL server is installable here.
   */
  url: string
  authToken?: string
  log: Logger
  /**
   * How long a statement waits for another connection's lock before SQLITE_BUSY (file databases
   * only; applied by the client to every pooled connection, unlike `pragma busy_timeout`, which
   * would reach just one of them). The wait blocks the event loop (the libSQL binding is
   * synchronous), which is why writes are batched and kept off the request path.
   */
  busyTimeoutMs?: number
  /** Where the drizzle-kit migrations live; defaults to `<package root>/drizzle`. */
  migrationsFolder?: string
}

export interface DatabaseHandle {
  db: Database
  client: Client
  /** Idempotent. */
  close(): void
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000
const MIGRATE_ATTEMPTS = 3

/** Opens the database, enables WAL for files, and applies pending migrations. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const filePath = localFilePath(opts.url)
  if (filePath !== undefined) await mkdir(dirname(resolve(filePath)), { recursive: true })

  // Only a remote URL needs the full client: its ws and http transports (ws, hrana-client) are
  // ~2 MB of the gateway's resident memory (measured) that an embedded database never uses.
  const { createClient } = isEmbedded(opts.url) ? await import('@libsql/client/sqlite3') : await import('@libsql/client')
  const client = createClient({
    url: opts.url,
    ...(opts.authToken !== undefined ? { authToken: opts.authToken } : {}),
    timeout: opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    // The embedded engine runs statements synchronously, so more connections add no parallelism;
    // one connection also keeps per-connection pragmas (synchronous, below) in force for every query.
    ...(filePath !== undefined && { concurrency: 1 }),
  })
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    client.close()
  }

  try {
    // WAL lets readers run beside one writer, so several gateway processes can share the file.
    // The mode is stored in the file itself, so setting it on one connection covers the pool.
    if (filePath !== undefined) {
      await client.execute('pragma journal_mode = wal')
      // WAL + NORMAL: no fsync per commit (runtime-state writes sit near the cold-start path); the
      // file stays consistent, and only a power loss can drop the last commits before a checkpoint.
      await client.execute('pragma synchronous = normal')
    }
    const db = drizzle(client, { schema })
    await migrateWithRetry(db, opts.migrationsFolder ?? findMigrationsFolder(), opts.log)
    return { db, client, close }
  } catch (err) {
    close()
    throw err
  }
}

/**
 * Gateways starting together on a fresh file can both see "no migration applied"; the loser's
 * CREATE TABLE then fails inside its (rolled back) transaction. Running migrate() again re-reads
 * the journal table and finds nothing left to do. Bounded, so a broken migration still fails.
 */
async function migrateWithRetry(db: Database, migrationsFolder: string, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await migrate(db, { migrationsFolder })
      return
    } catch (err) {
      if (attempt >= MIGRATE_ATTEMPTS) throw err
      log.warn({ err, attempt }, 'database migration failed, retrying')
    }
  }
}

/** Whether libSQL serves the URL in process (a file or memory), as `@libsql/client` decides it. */
function isEmbedded(url: string): boolean {
  return url === ':memory:' || url.startsWith('file:')
}

/** The filesystem path of a `file:` URL, or undefined for remote and in-memory databases. */
export function localFilePath(url: string): string | undefined {
  if (!url.startsWith('file:')) return undefined
  let path = url.slice('file:'.length)
  const query = path.indexOf('?')
  if (query !== -1) path = path.slice(0, query)
  // file:///abs and file://localhost/abs carry an (empty or local) authority before the path.
  if (path.startsWith('//')) {
    const slash = path.indexOf('/', 2)
    path = slash === -1 ? '' : path.slice(slash)
  }
  if (path === '' || path === ':memory:') return undefined
  return decodeURIComponent(path)
}

/**
 * The drizzle/ folder at the package root. This module runs from src/db (vitest, tsx) or from
 * the tsc output under dist/, so walk up to the first directory holding package.json rather
 * than counting `..` segments.
 */
export function findMigrationsFolder(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const folder = join(dir, 'drizzle')
      if (!existsSync(join(folder, 'meta', '_journal.json'))) {
        throw new GatewayError('INTERNAL', 500, `database migrations not found in ${folder} (run npm run db:generate)`)
      }
      return folder
    }
    const parent = dirname(dir)
    if (parent === dir) {
      throw new GatewayError('INTERNAL', 500, `no package.json above ${fileURLToPath(from)}: cannot locate migrations`)
    }
    dir = parent
  }
}
