import { readFile, readdir, readlink, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { copyPlugin, FIXTURES_DIR, startTestGateway, tempDir, TEST_SECRET_KEY, warmUp } from '../helpers/gateway.js'

const ADMIN_TOKEN = 'admin-token-must-not-leak-0123'
const HOST_ENV = {
  ADMIN_TOKEN,
  DATABASE_AUTH_TOKEN: 'db-auth-token-must-not-leak',
  CLUSTER_SECRET: 'cluster-secret-must-not-leak',
  SECRET_KEY_PREVIOUS: 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789',
  NOT_ALLOWED: 'host-variable-must-not-leak',
  PROBE_ALLOWED: 'allow-listed-value',
}
// CONTRACT.md §2: the minimal base, the org's config/auth, and the allow-list. Nothing else.
const CONTRACT_ENV = new Set(['PATH', 'NODE_ENV', 'HOME', 'TMPDIR', 'HAY_ORG_CONFIG', 'HAY_ORG_AUTH', 'PROBE_ALLOWED'])

interface ProbeEnv {
  keys: string[]
  allowed: string | null
  env: Record<string, string>
}

/** A copy of env-probe whose manifest allow-lists the gateway's own secrets, as a hostile plugin would. */
async function greedyPluginDir(): Promise<string> {
  const plugins = join(await tempDir(), 'plugins')
  await mkdir(plugins)
  const dir = await copyPlugin(join(FIXTURES_DIR, 'env-probe'), plugins, 'env-greedy')
  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
  manifest['hay-plugin'].env = [
    'PROBE_ALLOWED',
    'ADMIN_TOKEN',
    'SECRET_KEY',
    'SECRET_KEY_PREVIOUS',
    'CLUSTER_SECRET',
    'DATABASE_URL',
    'DATABASE_AUTH_TOKEN',
    'NOT_ALLOWED_TYPO',
  ]
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest))
  return plugins
}

function expectContractEnvOnly(probe: ProbeEnv, dbUrl: string) {
  expect(probe.keys.filter((k) => !CONTRACT_ENV.has(k))).toEqual([])
  expect(probe.keys).toEqual(expect.arrayContaining(['PATH', 'HAY_ORG_CONFIG', 'PROBE_ALLOWED']))
  expect(probe.allowed).toBe('allow-listed-value')
  const values = JSON.stringify(probe.env)
  for (const leaked of [
    ADMIN_TOKEN,
    HOST_ENV.DATABASE_AUTH_TOKEN,
    HOST_ENV.CLUSTER_SECRET,
    HOST_ENV.SECRET_KEY_PREVIOUS,
    HOST_ENV.NOT_ALLOWED,
    TEST_SECRET_KEY,
    dbUrl,
  ]) {
    expect(values).not.toContain(leaked)
  }
}

/** Socket inodes of TCP listeners on `port`, per local address, from /proc/net/tcp{,6}. */
async function listenersOn(port: number): Promise<Array<{ family: 4 | 6; address: string; inode: string }>> {
  const found: Array<{ family: 4 | 6; address: string; inode: string }> = []
  for (const [file, family] of [
    ['/proc/net/tcp', 4],
    ['/proc/net/tcp6', 6],
  ] as const) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      const [address, portHex] = (cols[1] ?? '').split(':')
      if (cols[3] !== '0A' || portHex === undefined || parseInt(portHex, 16) !== port) continue // 0A = LISTEN
      found.push({ family, address: address ?? '', inode: cols[9] ?? '' })
    }
  }
  return found
}

async function socketInodesOf(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const m = /^socket:\[(\d+)\]$/.exec(target)
    if (m?.[1]) inodes.add(m[1])
  }
  return inodes
}

describe('worker environment isolation', () => {
  it.each([
    ['a prewarmed worker (the default)', {}, true],
    ['a freshly spawned one', { PREWARM_POOL_SIZE: '0' }, false],
  ])('hands %s only the contract env: no admin token, database URL, SECRET_KEY or other host variables', async (_name, env, prewarmed) => {
    const t = await startTestGateway({ env: { ...HOST_ENV, ...env } })
    if (prewarmed) await warmUp(t, 'env-probe', '/whoami')
    await t.enable('acme', 'env-probe', { label: 'hello' })
    const res = await fetch(`${t.url}/orgs/acme/plugins/env-probe/env`)
    expect(res.status).toBe(200)
    const probe = (await res.json()) as ProbeEnv
    expectContractEnvOnly(probe, `file:${join(t.dir, 'gateway.db')}`)
    expect(JSON.parse(probe.env.HAY_ORG_CONFIG ?? '')).toEqual({ org: { id: 'acme' }, config: { label: 'hello' } })
    expect(probe.keys).not.toContain('HAY_ORG_AUTH') // no auth configured
    const worker = t.spawned.at(-1)
    expect(worker?.spawnargs.includes('--prewarm')).toBe(prewarmed)
    // What the OS started the process with holds no more (Node's own IPC variables aside): nothing
    // to read in /proc/<pid>/environ either.
    const environ = (await readFile(`/proc/${worker?.pid}/environ`, 'utf8')).split('\0').filter(Boolean)
    const names = environ.map((kv) => kv.slice(0, kv.indexOf('=')))
    expect(names.filter((k) => !CONTRACT_ENV.has(k) && !k.startsWith('NODE_CHANNEL_'))).toEqual([])
    for (const value of [ADMIN_TOKEN, HOST_ENV.CLUSTER_SECRET, HOST_ENV.NOT_ALLOWED, TEST_SECRET_KEY]) {
      expect(environ.join('\n')).not.toContain(value)
    }
  })

  it('does not hand over the gateway secrets even when a manifest allow-lists them', async () => {
    const t = await startTestGateway({ env: HOST_ENV, pluginDirs: [await greedyPluginDir()] })
    await t.enable('acme', 'env-greedy')
    const res = await fetch(`${t.url}/orgs/acme/plugins/env-greedy/env`)
    const probe = (await res.json()) as ProbeEnv
    expect([res.status, probe]).toEqual([200, expect.objectContaining({ keys: expect.any(Array) })])
    expectContractEnvOnly(probe, `file:${join(t.dir, 'gateway.db')}`)
  })

  it('runs workers listening on 127.0.0.1 only', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'env-probe')
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/env-probe/whoami`)).body?.cancel()
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()
    const { body } = await t.admin('GET', '/workers')
    expect(body.workers).toHaveLength(2)

    for (const w of body.workers as Array<{ pid: number; port: number }>) {
      const listeners = await listenersOn(w.port)
      // Exactly one listener on the worker's port: IPv4, 127.0.0.1 (0100007F in /proc's byte order) ...
      expect(listeners.map((l) => [l.family, l.address])).toEqual([[4, '0100007F']])
      // ... and it is the worker process's own socket.
      expect((await socketInodesOf(w.pid)).has(listeners[0]?.inode ?? '')).toBe(true)
    }
  })
})
