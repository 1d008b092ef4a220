import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isGatewayError } from '../../src/core/index.js'
import { openSecretBox, readKeyFile } from '../../src/secrets/node/index.js'
import { ROOT, startTestGateway, TEST_SECRET_KEY, tempDir, type TestGateway } from '../helpers/gateway.js'
import { capturedLogger } from '../helpers/log.js'
import { spawnNode, workerEnv } from '../helpers/process.js'

// With no SECRET_KEY on the embedded default (a local database file), the gateway seals secrets with
// a key it generates beside the database on first need (README, Security).

const keyFileOf = (t: { dir: string }) => join(t.dir, 'secret.key')

/** The echo worker's reply prefix: what the worker sees of config.prefix. */
async function echoPrefix(t: TestGateway, orgId: string): Promise<unknown> {
  const res = await fetch(`${t.url}/orgs/${orgId}/plugins/echo/items/1`)
  expect(res.status).toBe(200)
  return ((await res.json()) as { prefix?: unknown }).prefix
}

/** Every byte of the database files (main file, WAL, shared memory), after pending writes land. */
async function databaseBytes(t: TestGateway): Promise<Buffer> {
  await t.gw.flush()
  const files = (await readdir(t.dir)).filter((f) => f.startsWith('gateway.db'))
  return Buffer.concat(await Promise.all(files.map((f) => readFile(join(t.dir, f)))))
}

async function startError(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!isGatewayError(err)) throw new Error(`expected a coded start-up refusal, got ${String(err)}`)
  return err.code
}

describe('a generated key on the embedded default', () => {
  it('accepts a config write on a fresh database without SECRET_KEY: the key file appears beside it, mode 0600', async () => {
    const { log, records } = capturedLogger('info')
    const t = await startTestGateway({ secretKey: null, log })
    expect(readKeyFile(keyFileOf(t))).toBeUndefined() // created on first need, not at start-up
    expect(records().filter((r) => r.keyFile === keyFileOf(t))).toHaveLength(1) // the one start-up line says where

    // The schema is not known before the first start, so the value is sealed: that needs the key.
    const put = await t.admin('PUT', '/orgs/acme/plugins/echo', { enabled: true, config: { prefix: 'generated-secret-value' } })
    expect(put.status).toBe(200)
    expect((await stat(keyFileOf(t))).mode & 0o777).toBe(0o600)
    expect((await readFile(keyFileOf(t), 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/)
    expect((await databaseBytes(t)).includes('generated-secret-value')).toBe(false)
    expect(await echoPrefix(t, 'acme')).toBe('generated-secret-value')
    expect(records().some((r) => JSON.stringify(r).includes((readKeyFile(keyFileOf(t)) as Buffer).toString('hex')))).toBe(false)
  })

  it('a second gateway on the same database uses the same key', async () => {
    const first = await startTestGateway({ secretKey: null })
    await first.enable('acme', 'echo', { prefix: 'shared-key' })
    const key = await readFile(keyFileOf(first))
    // Both run at once on one file: the second finds the key the first created, and writes under it.
    const second = await startTestGateway({ dir: first.dir, secretKey: null })
    await second.enable('beta', 'echo', { prefix: 'from-second' })
    expect(await readFile(keyFileOf(first))).toEqual(key)
    expect(await echoPrefix(second, 'acme')).toBe('shared-key')
    await second.gw.close()
    expect(await echoPrefix(first, 'beta')).toBe('from-second')
  })

  it('processes racing to create the key file all end up with the one key that was written', async () => {
    const dir = await tempDir()
    const path = join(dir, 'secret.key')
    const module = join(ROOT, 'dist', 'secrets', 'node', 'key-file.js')
    // Each process is up and waiting before any of them creates the key: they start on one signal.
    const script = `const { readOrCreateKeyFile } = await import(${JSON.stringify(module)})
process.stdout.write('waiting\\n')
process.stdin.once('data', () => process.stdout.write('key ' + readOrCreateKeyFile(${JSON.stringify(path)}).toString('hex') + '\\n'))`
    const racers = Array.from({ length: 6 }, () =>
      spawnNode(['--input-type=module', '-e', script], { env: workerEnv(), stdio: ['pipe', 'pipe', 'pipe'] }),
    )
    await Promise.all(racers.map((r) => r.waitForStdout('waiting')))
    for (const r of racers) r.child.stdin?.end('go\n')
    await Promise.all(racers.map((r) => r.exited))
    const keys = racers.map((r) => /key ([0-9a-f]{64})/.exec(r.stdout())?.[1])
    expect(new Set(keys)).toEqual(new Set([(readKeyFile(path) as Buffer).toString('hex')]))
    expect(await readdir(dir)).toEqual(['secret.key']) // no temporary file left behind
    expect((await stat(path)).mode & 0o777).toBe(0o600)
  })

  it('without SECRET_KEY, a remote database or a cluster gets no generated key, and start-up names SECRET_KEY', async () => {
    for (const settings of [
      { databaseFile: undefined, clustered: false },
      { databaseFile: join(await tempDir(), 'gateway.db'), clustered: true },
    ]) {
      const { log, records } = capturedLogger('info')
      const box = openSecretBox({ key: undefined, previousKeys: [], ...settings }, log)
      expect(box.hasKey).toBe(false)
      expect(records()).toEqual([expect.objectContaining({ set: 'SECRET_KEY', level: 40 })])
    }

    const t = await startTestGateway({ secretKey: null, env: { CLUSTER_SECRET: 'cluster-secret-0123456789' } })
    const refused = await t.admin('PUT', '/orgs/acme/plugins/echo', { enabled: true, config: { prefix: 'x' } })
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'SECRETS_UNAVAILABLE' } } })
    expect(refused.body.error.message).toContain('SECRET_KEY')
    expect(readKeyFile(keyFileOf(t))).toBeUndefined()
  })

  it('SECRET_KEY wins: no key file is generated, and one generated earlier is not used', async () => {
    const configured = await startTestGateway()
    await configured.enable('acme', 'echo', { prefix: 'under-secret-key' })
    expect(readKeyFile(keyFileOf(configured))).toBeUndefined()

    const first = await startTestGateway({ secretKey: null })
    await first.enable('acme', 'echo', { prefix: 'under-generated' })
    await first.gw.close()
    // The secret was sealed under the generated key: SECRET_KEY alone does not open it.
    expect(await startError(startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY }))).toBe('SECRETS_UNREADABLE')
  })

  it('rotates from the generated key to a configured SECRET_KEY with SECRET_KEY_PREVIOUS', async () => {
    const first = await startTestGateway({ secretKey: null })
    await first.enable('acme', 'echo', { prefix: 'rotate-me' })
    await first.gw.close()
    const generated = (await readFile(keyFileOf(first), 'utf8')).trim()

    const rotating = await startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY, env: { SECRET_KEY_PREVIOUS: generated } })
    expect(await echoPrefix(rotating, 'acme')).toBe('rotate-me')
    await rotating.gw.close()
    const configured = await startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY })
    expect(await echoPrefix(configured, 'acme')).toBe('rotate-me')
  })

  it('refuses to start on a key file that holds no key, naming it', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'secret.key'), 'not a key\n', { mode: 0o600 })
    const err = await startTestGateway({ dir, secretKey: null }).then(
      () => null,
      (e: unknown) => e,
    )
    expect(isGatewayError(err) && err.code).toBe('SECRETS_UNREADABLE')
    expect((err as Error).message).toContain(join(dir, 'secret.key'))
  })

  it('keeps a stored secret unreadable from the database file without the key file', async () => {
    const t = await startTestGateway({ secretKey: null })
    const put = await t.admin('PUT', '/orgs/acme/plugins/webhook', { enabled: true, config: { webhookSecret: 'whsec_never_in_the_file' } })
    expect(put.status).toBe(200)
    expect((await databaseBytes(t)).includes('whsec_never_in_the_file')).toBe(false)
    await t.gw.close()

    // The database alone (a copy without secret.key, as a leaked backup would be) opens nothing.
    const copy = await tempDir()
    for (const f of (await readdir(t.dir)).filter((name) => name.startsWith('gateway.db'))) await cp(join(t.dir, f), join(copy, f))
    expect(await startError(startTestGateway({ dir: copy, secretKey: null }))).toBe('SECRETS_UNAVAILABLE')
    expect(readKeyFile(join(copy, 'secret.key'))).toBeUndefined() // refusing created no new key either
  })
})
