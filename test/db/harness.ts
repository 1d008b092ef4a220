import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { openDatabase } from '../../src/db/index.js'
import type { CatalogPlugin, DatabaseHandle, OpenDatabaseOptions } from '../../src/db/index.js'

/** A temp directory removed when the current test finishes. */
export async function tempDir(prefix = 'pg-db-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A migrated libSQL file in a temp dir; closed (then removed) when the test finishes. */
export async function openTempDb(
  opts: Partial<OpenDatabaseOptions> & { dir?: string } = {},
): Promise<DatabaseHandle & { url: string; dir: string }> {
  const dir = opts.dir ?? (await tempDir())
  const url = opts.url ?? `file:${join(dir, 'gateway.db')}`
  const handle = await openDatabase({ log: silentLogger, ...opts, url })
  onTestFinished(() => handle.close())
  return { ...handle, url, dir }
}

/** A valid SDK v2 catalog entry for repository and metadata tests; `over` changes any field. */
export const v2Plugin = (over: Partial<CatalogPlugin> = {}): CatalogPlugin => ({
  id: 'echo',
  name: 'hay-plugin-echo',
  version: '1.0.0',
  dir: '/plugins/echo',
  manifest: { entry: './dist/index.js', env: [], permissions: [] },
  sdkVersion: 'v2',
  checksum: 'sum-1',
  ...over,
})
