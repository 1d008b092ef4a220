import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/index.js'
import { findMigrationsFolder, localFilePath, openDatabase } from '../../src/db/index.js'
import { openTempDb, tempDir } from './harness.js'

// One row per migration file in drizzle/meta/_journal.json: each applied exactly once.
const MIGRATIONS = (JSON.parse(readFileSync(join(findMigrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] })
  .entries.length

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe('openDatabase', () => {
  it('creates the parent directory, applies the migrations and turns WAL on for a fresh file', async () => {
    const dir = await tempDir()
    const { client } = await openTempDb({ dir, url: `file:${join(dir, 'nested', 'deeper', 'gateway.db')}` })

    const tables = await client.execute("select name from sqlite_master where type = 'table' order by name")
    expect(tables.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['plugins', 'plugin_instances', '__drizzle_migrations']))
    const journal = await client.execute('pragma journal_mode')
    expect(journal.rows[0]?.journal_mode).toBe('wal')
  })

  it('applies the busy timeout to the pooled connections', async () => {
    const { client } = await openTempDb({ busyTimeoutMs: 1234 })
    const timeout = await client.execute('pragma busy_timeout')
    expect(Object.values(timeout.rows[0] ?? {})).toContain(1234)
  })

  it('reopens an existing file without re-applying migrations and keeps its rows', async () => {
    const dir = await tempDir()
    const url = `file:${join(dir, 'gateway.db')}`
    const first = await openDatabase({ url, log: silentLogger })
    await first.client.execute("insert into plugin_instances (org_id, plugin_id, created_at, updated_at) values ('acme', 'echo', 1, 1)")
    first.close()
    first.close() // idempotent

    const second = await openTempDb({ dir, url })
    const applied = await second.client.execute('select count(*) as n from __drizzle_migrations')
    expect(applied.rows[0]?.n).toBe(MIGRATIONS)
    const rows = await second.client.execute('select org_id from plugin_instances')
    expect(rows.rows.map((r) => r.org_id)).toEqual(['acme'])
  })

  it('lets two gateways open the same fresh file at once', async () => {
    const dir = await tempDir()
    const url = `file:${join(dir, 'gateway.db')}`
    const [a, b] = await Promise.all([openTempDb({ dir, url }), openTempDb({ dir, url })])
    const applied = await a.client.execute('select count(*) as n from __drizzle_migrations')
    expect(applied.rows[0]?.n).toBe(MIGRATIONS)
    await expect(b.client.execute('select count(*) from plugins')).resolves.toBeDefined()
  })
})

describe('findMigrationsFolder', () => {
  it('finds drizzle/ at the package root from the source tree', () => {
    expect(findMigrationsFolder()).toBe(join(repoRoot, 'drizzle'))
  })

  it('finds the same folder from the compiled dist/ layout', () => {
    const compiled = pathToFileURL(join(repoRoot, 'dist', 'db', 'open.js')).href
    expect(findMigrationsFolder(compiled)).toBe(join(repoRoot, 'drizzle'))
  })

  it('fails with a coded error when the package has no generated migrations', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'package.json'), '{}')
    await mkdir(join(dir, 'src', 'db'), { recursive: true })
    const from = pathToFileURL(join(dir, 'src', 'db', 'open.js')).href
    expect(() => findMigrationsFolder(from)).toThrow(expect.objectContaining({ code: 'INTERNAL' }))
  })
})

describe('localFilePath', () => {
  it.each([
    ['file:./data/gateway.db', './data/gateway.db'],
    ['file:/var/lib/gw.db', '/var/lib/gw.db'],
    ['file:///var/lib/gw.db', '/var/lib/gw.db'],
    ['file://localhost/var/lib/gw.db', '/var/lib/gw.db'],
    ['file:data/gw.db?mode=rwc', 'data/gw.db'],
    ['file::memory:', undefined],
    ['libsql://gateway-acme.turso.io', undefined],
    ['http://127.0.0.1:8080', undefined],
  ])('maps %s to %s', (url, expected) => {
    expect(localFilePath(url)).toBe(expected)
  })
})
