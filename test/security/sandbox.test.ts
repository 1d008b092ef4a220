import { chownSync, existsSync, readdirSync, statSync } from 'node:fs'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { chmod, cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { readProcStat } from '../../src/workers/index.js'
import { copyPlugin, EXAMPLES_DIR, exitOf, FIXTURES_DIR, ROOT, startTestGateway, tempDir } from '../helpers/gateway.js'

type Attempt = { ok: boolean; code: string | null; detail: string }
type Attempts = Record<string, Attempt>
type TestGateway = Awaited<ReturnType<typeof startTestGateway>>

const isRoot = process.getuid?.() === 0
// Node's permission model refuses with ERR_ACCESS_DENIED; an addon load with ERR_DLOPEN_DISABLED.
const PERMISSION_ERRORS = ['ERR_ACCESS_DENIED', 'ERR_DLOPEN_DISABLED']
const NOGROUP = 65_534
/** The uids of a root gateway's workers when WORKER_UID is not set (0x70000000-0x7000ffff). */
const isDefaultWorkerUid = (uid: number) => uid >= 1_879_048_192 && uid <= 1_879_113_727

/** A native addon the hostile plugin may reach by path: libSQL's, under the gateway's own node_modules. */
function nativeAddon(): string {
  const scope = join(ROOT, 'node_modules', '@libsql')
  for (const pkg of readdirSync(scope)) {
    const file = join(scope, pkg, 'index.node')
    if (existsSync(file)) return file
  }
  throw new Error('no native addon found under node_modules/@libsql')
}

/** A directory named as a gateway's temp root (with one worker dir), removed after the test. */
async function tempRootOf(identity: string, mode = 0o711): Promise<string> {
  const root = join(tmpdir(), `plugin-gateway-workers-${identity}`)
  await mkdir(join(root, '0'), { recursive: true })
  await chmod(root, mode)
  onTestFinished(() => rm(root, { recursive: true, force: true }))
  return root
}

/** A process that runs until the test ends. */
async function liveProcess() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
  const exited = exitOf(child)
  onTestFinished(async () => {
    child.kill('SIGKILL')
    await exited
  })
  await once(child, 'spawn')
  return child
}

async function pidOf(t: TestGateway, orgId: string, pluginId: string, path: string): Promise<number> {
  const res = await fetch(`${t.url}/orgs/${orgId}/plugins/${pluginId}${path}`)
  expect(res.status).toBe(200)
  await res.body?.cancel()
  const { body } = await t.admin('GET', '/workers')
  return body.workers.find((w: { orgId: string; pluginId: string }) => w.orgId === orgId && w.pluginId === pluginId).pid
}

/** What the hostile plugin goes after in a test gateway: the gateway, echo's worker, the database and key file. */
async function targetsIn(t: TestGateway) {
  await t.enable('acme', 'echo')
  return {
    gatewayPid: String(process.pid), // the test gateway runs in this process
    otherPid: String(await pidOf(t, 'acme', 'echo', '/items/1')),
    databaseFile: join(t.dir, 'gateway.db'),
    keyFile: join(t.dir, 'secret.key'),
    otherPluginFile: join(EXAMPLES_DIR, 'echo', 'index.js'),
    nativeAddon: nativeAddon(),
  }
}

const refused = { ok: false, code: expect.toSatisfy((c: string) => PERMISSION_ERRORS.includes(c)) }

function expectAllRefused(attempts: Attempts): void {
  const { writeTmpdir, ...hostile } = attempts
  expect(Object.keys(hostile).length).toBeGreaterThan(15)
  for (const [name, result] of Object.entries(hostile)) expect({ name, ...result }).toMatchObject({ name, ...refused })
  expect(writeTmpdir).toMatchObject({ ok: true, detail: 'mine' }) // its own temp dir is writable
}

/** Adds `permissions` to the manifest of the plugin in dir. */
async function withPermissions(dir: string, permissions: string[]): Promise<void> {
  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
  manifest['hay-plugin'].permissions = permissions
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest))
}

describe('the worker sandbox (on by default)', () => {
  it('lets a plugin that declares child-process run its stdio MCP server, and refuses it to one that does not', async () => {
    const plugins = join(await tempDir(), 'plugins')
    await mkdir(plugins)
    await withPermissions(await copyPlugin(join(FIXTURES_DIR, 'hay-compat'), plugins, 'undeclared'), [])
    const t = await startTestGateway({ pluginDirs: [plugins, FIXTURES_DIR] })
    await t.enable('acme', 'hay-compat')
    const tools = await t.admin('GET', '/orgs/acme/plugins/hay-compat/mcp/tools')
    expect(tools.body.tools.map((x: { name: string }) => x.name)).toContain('stdio_echo')
    const call = await t.admin('POST', '/orgs/acme/plugins/hay-compat/mcp/call', { toolName: 'stdio_echo', arguments: { a: 1 } })
    expect(call).toMatchObject({ status: 200, body: { content: [{ type: 'text', text: '{"a":1}' }] } })

    await t.enable('acme', 'undeclared')
    const refused = await t.admin('GET', '/orgs/acme/plugins/undeclared/mcp/tools')
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'WORKER_START_FAILED' } } })
    expect(refused.body.error.message).toMatch(/ERR_ACCESS_DENIED|Access to this API has been restricted/)
  })

  it('refuses a hostile plugin everything that is not its own, from a route and from onStart, and it keeps serving', async () => {
    // No SECRET_KEY: the generated key file exists once the first secret is stored.
    const t = await startTestGateway({ secretKey: null })
    const targets = await targetsIn(t)
    await t.enable('acme', 'hostile', { targets }) // sealed (its schema is not known yet): creates secret.key
    expect(existsSync(targets.keyFile)).toBe(true)

    const query = new URLSearchParams(targets).toString()
    const fromRoute = await fetch(`${t.url}/orgs/acme/plugins/hostile/attempts?${query}`)
    expect(fromRoute.status).toBe(200)
    expectAllRefused((await fromRoute.json()) as Attempts)
    const fromStart = await fetch(`${t.url}/orgs/acme/plugins/hostile/start-attempts`)
    expectAllRefused((await fromStart.json()) as Attempts)

    const ping = await fetch(`${t.url}/orgs/acme/plugins/hostile/ping`)
    expect([ping.status, await ping.json()]).toEqual([200, expect.objectContaining({ pong: true })])
    const hostilePid = (await t.admin('GET', '/workers')).body.workers.find((w: { pluginId: string }) => w.pluginId === 'hostile').pid
    expect(existsSync(join(FIXTURES_DIR, 'hostile', 'pwned.txt'))).toBe(false)
    expect(existsSync(`/tmp/hostile-${hostilePid}.txt`)).toBe(false)
  })

  it.runIf(isRoot)(
    'runs workers as a uid of their own in group nogroup when the gateway is root; the database and key file are readable by the gateway only',
    async () => {
      const t = await startTestGateway({ secretKey: null })
      const targets = await targetsIn(t)
      await t.enable('acme', 'hostile', { targets })
      const pid = await pidOf(t, 'acme', 'hostile', '/ping')
      const status = await readFile(`/proc/${pid}/status`, 'utf8')
      expect(isDefaultWorkerUid(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]))).toBe(true)
      expect(/^Gid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(NOGROUP))
      expect(/^Groups:[ \t]*(.*)$/m.exec(status)?.[1]?.trim()).toBe('') // no supplementary group of the gateway's
      for (const file of [targets.databaseFile, targets.keyFile]) {
        expect({ file, mode: statSync(file).mode & 0o077 }).toEqual({ file, mode: 0 })
      }
    },
  )

  it.runIf(isRoot)('a plugin allowed child processes is held by its OS user: one uid per worker with a WORKER_UID range', async () => {
    const plugins = join(await tempDir(), 'plugins')
    await mkdir(plugins)
    await withPermissions(await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'spawner'), ['child-process'])
    const range = { WORKER_UID: '200000-200101', WORKER_GID: '200000' } // MAX_WORKERS (100) + PREWARM_POOL_SIZE (1)
    const t = await startTestGateway({ secretKey: null, env: range, pluginDirs: [plugins, EXAMPLES_DIR] })
    const targets = await targetsIn(t)
    await t.enable('acme', 'spawner', { targets })
    const shell = async (cmd: string) => {
      const res = await fetch(`${t.url}/orgs/acme/plugins/spawner/shell?${new URLSearchParams({ cmd })}`)
      return (await res.json()) as { status: number; stdout: string; stderr: string }
    }
    expect((await shell('id -u')).stdout.trim()).toMatch(/^2000\d\d$/)
    expect(await shell(`id -u; cat /proc/${targets.otherPid}/status | grep ^Uid`)).toMatchObject({ status: 0 })
    const uids = (await shell(`id -u; grep ^Uid /proc/${targets.otherPid}/status`)).stdout.split('\n')
    expect(uids[1]).not.toContain(uids[0]) // echo's worker runs as another uid of the range
    for (const file of [`/proc/${process.pid}/environ`, `/proc/${targets.otherPid}/environ`, targets.databaseFile, targets.keyFile]) {
      const r = await shell(`cat ${file}`)
      expect({ file, status: r.status, stderr: r.stderr }).toMatchObject({
        file,
        status: 1,
        stderr: expect.stringContaining('Permission denied'),
      })
    }
  })

  it("gives each worker a temp dir of its own as its TMPDIR, owned by the worker's user, removed when it stops", async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'env-probe')
    const res = await fetch(`${t.url}/orgs/acme/plugins/env-probe/env`)
    const tmp = ((await res.json()) as { env: Record<string, string> }).env.TMPDIR as string
    const stat = statSync(tmp)
    expect(stat.mode & 0o777).toBe(0o700)
    if (isRoot) expect([isDefaultWorkerUid(stat.uid), stat.gid]).toEqual([true, NOGROUP])
    expect(await t.admin('POST', '/orgs/acme/plugins/env-probe/stop')).toMatchObject({ status: 200 })
    await vi.waitFor(() => expect(existsSync(tmp)).toBe(false), { timeout: 5_000, interval: 10 })
  })

  it('removes the temp dirs of workers of a gateway that was killed, at the next start', async () => {
    const dead = spawn('true')
    await exitOf(dead)
    const stale = join(tmpdir(), `plugin-gateway-workers-${dead.pid}-test`)
    await mkdir(join(stale, '0'), { recursive: true })
    onTestFinished(() => rm(stale, { recursive: true, force: true }))
    await startTestGateway()
    expect(existsSync(stale)).toBe(false)
  })

  it('removes the temp dirs of a killed gateway whose pid another process has taken since (its start time differs)', async () => {
    const reused = await liveProcess()
    const startTime = readProcStat(reused.pid as number)?.startTime as number
    const stale = await tempRootOf(`${reused.pid}-${startTime - 1}-abc123`)
    const live = await tempRootOf(`${reused.pid}-${startTime}-abc123`) // that process could be a gateway
    await startTestGateway()
    expect([existsSync(stale), existsSync(join(live, '0'))]).toEqual([false, true])
  })

  it.skipIf(!isRoot)("leaves alone what others made under a temp root's name, and never follows a link", async () => {
    const dead = spawn('true')
    await exitOf(dead)
    const othersDir = await tempRootOf(`${dead.pid}-1-abc123`)
    chownSync(othersDir, NOGROUP, NOGROUP)
    const writable = await tempRootOf(`${dead.pid}-2-abc123`, 0o777)
    const target = await tempDir()
    await writeFile(join(target, 'keep'), '')
    const link = join(tmpdir(), `plugin-gateway-workers-${dead.pid}-3-abc123`)
    await symlink(target, link)
    onTestFinished(() => rm(link, { force: true }))
    await startTestGateway()
    expect([existsSync(join(othersDir, '0')), existsSync(join(writable, '0')), existsSync(join(target, 'keep'))]).toEqual([
      true,
      true,
      true,
    ])
  })

  it("reads a package linked into the plugin's node_modules from elsewhere (a workspace, as Hay's plugins link its SDK), not what lies beside it", async () => {
    const dir = await tempDir()
    const library = join(dir, 'packages', 'greeting')
    await mkdir(library, { recursive: true })
    await writeFile(join(library, 'package.json'), '{"name":"greeting","type":"module","exports":"./index.js"}')
    await writeFile(join(library, 'index.js'), "export const greet = (name) => 'hello ' + name")
    await writeFile(join(dir, 'packages', 'secret.txt'), 'not for plugins')
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'workspace')
    await mkdir(join(pluginDir, 'node_modules'))
    await symlink('../../../packages/greeting', join(pluginDir, 'node_modules', 'greeting')) // relative, as npm links
    await writeFile(
      join(pluginDir, 'index.js'),
      `import { readFileSync } from 'node:fs'
import { defineHayPlugin } from '@plugin-gateway/sdk'
import { greet } from 'greeting'
export default defineHayPlugin(() => ({
  name: 'workspace',
  onInitialize({ register }) {
    register.route('GET', '/greet', (_req, res) => {
      let beside
      try { beside = readFileSync(${JSON.stringify(join(dir, 'packages', 'secret.txt'))}, 'utf8') } catch (err) { beside = err.code }
      res.json({ greeting: greet('acme'), beside })
    })
  },
}))
`,
    )
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await t.enable('acme', 'workspace')
    const res = await fetch(`${t.url}/orgs/acme/plugins/workspace/greet`)
    expect([res.status, await res.json()]).toEqual([200, { greeting: 'hello acme', beside: 'ERR_ACCESS_DENIED' }])
  })

  it("refuses to start a plugin whose workers would read another plugin's directory through a workspace link in a node_modules above it", async () => {
    const dir = await tempDir()
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    const reader = await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'reader')
    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'linked')
    // A workspace install links its members into the node_modules every plugin of it resolves from.
    await mkdir(join(dir, 'node_modules', '@ws'), { recursive: true })
    await symlink('../../plugins/linked', join(dir, 'node_modules', '@ws', 'linked'))
    const viaLink = join(dir, 'node_modules', '@ws', 'linked', 'index.js')
    await writeFile(
      join(reader, 'index.js'),
      `import { readFileSync } from 'node:fs'
import { defineHayPlugin } from '@plugin-gateway/sdk'
export default defineHayPlugin(() => ({
  name: 'reader',
  onInitialize({ register }) {
    register.route('GET', '/read', (_req, res) => {
      try { res.json({ read: readFileSync(${JSON.stringify(viaLink)}, 'utf8').length }) } catch (err) { res.json({ refused: err.code }) }
    })
  },
}))
`,
    )
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await t.enable('acme', 'reader')
    const res = await fetch(`${t.url}/orgs/acme/plugins/reader/read`)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect([res.status, body.error?.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect((await t.instanceRow('acme', 'reader'))?.lastError).toContain(join(dir, 'node_modules', '@ws', 'linked'))
    expect(t.spawned).toEqual([]) // refused before anything ran
    // The linked plugin itself reads its own directory through that link: it starts.
    await t.enable('acme', 'linked')
    expect((await fetch(`${t.url}/orgs/acme/plugins/linked/items/1`)).status).toBe(200)
  })

  it('refuses to start a plugin whose workers would read what a non-package link in a node_modules above it leads to', async () => {
    const dir = await tempDir()
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'reader')
    await mkdir(join(dir, 'private'))
    await writeFile(join(dir, 'private', 'notes.txt'), 'not for plugins')
    await symlink('../private', join(dir, 'node_modules', 'notes')) // no package.json there
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await t.enable('acme', 'reader')
    const res = await fetch(`${t.url}/orgs/acme/plugins/reader/ping`)
    expect([res.status, ((await res.json()) as { error?: { code: string } }).error?.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect((await t.instanceRow('acme', 'reader'))?.lastError).toContain(join(dir, 'node_modules', 'notes'))
    expect(t.spawned).toEqual([]) // refused before anything ran
  })

  it('refuses to start a plugin whose workers would read its plugins directory whole (plugins installed into a node_modules)', async () => {
    const dir = await tempDir()
    const nodeModules = join(dir, 'node_modules')
    const plugins = join(nodeModules, '@hay')
    await mkdir(join(nodeModules, '@plugin-gateway'), { recursive: true })
    await symlink(join(ROOT, 'sdk'), join(nodeModules, '@plugin-gateway', 'sdk'))
    await cp(join(FIXTURES_DIR, 'hostile'), join(plugins, 'reader'), { recursive: true })
    await cp(join(EXAMPLES_DIR, 'echo'), join(plugins, 'other'), { recursive: true })
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await t.enable('acme', 'reader')
    const res = await fetch(`${t.url}/orgs/acme/plugins/reader/ping`)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect([res.status, body.error?.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect((await t.instanceRow('acme', 'reader'))?.lastError).toContain(plugins)
    expect(t.spawned).toEqual([]) // refused before anything ran
  })

  it('refuses to start a plugin whose directory links to a file outside what its workers may read', async () => {
    const dir = await tempDir()
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'linker')
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await symlink(join(dir, 'gateway.db'), join(pluginDir, 'data.db'))
    await t.enable('acme', 'linker')
    const res = await fetch(`${t.url}/orgs/acme/plugins/linker/ping`)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect([res.status, body.error.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect((await t.instanceRow('acme', 'linker'))?.lastError).toContain(join(pluginDir, 'data.db'))
    expect(t.spawned).toEqual([]) // refused before anything ran
  })

  it('refuses a package link whose target holds the database', async () => {
    const dir = await tempDir()
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'linker')
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await writeFile(join(dir, 'package.json'), '{"name":"looks-like-a-package"}') // beside gateway.db
    await mkdir(join(pluginDir, 'node_modules'))
    await symlink(dir, join(pluginDir, 'node_modules', 'innocent'))
    await t.enable('acme', 'linker')
    const res = await fetch(`${t.url}/orgs/acme/plugins/linker/ping`)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect([res.status, body.error.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect((await t.instanceRow('acme', 'linker'))?.lastError).toContain(join(dir, 'gateway.db'))
  })

  it('ends a worker that uses up WORKER_CPU_SECONDS; lastError says so and the next request starts a new one', async () => {
    const t = await startTestGateway({ env: { WORKER_CPU_SECONDS: '1' } })
    await t.enable('acme', 'hostile')
    const first = await pidOf(t, 'acme', 'hostile', '/ping')
    const spin = await fetch(`${t.url}/orgs/acme/plugins/hostile/spin?ms=5000`)
    expect(spin.status).toBe(502)
    await spin.body?.cancel()
    await vi.waitFor(async () => expect((await t.instanceRow('acme', 'hostile'))?.lastError).toMatch(/WORKER_CPU_SECONDS 1 s.*SIGXCPU/))
    expect(await pidOf(t, 'acme', 'hostile', '/ping')).not.toBe(first)
  })

  it('WORKER_SANDBOX=off runs workers with the gateway’s rights (the escape hatch for trusted plugins)', async () => {
    const plugins = join(await tempDir(), 'plugins')
    await mkdir(plugins)
    const pluginDir = await copyPlugin(join(FIXTURES_DIR, 'hostile'), plugins, 'trusted') // it writes into its own dir
    const t = await startTestGateway({ env: { WORKER_SANDBOX: 'off' }, pluginDirs: [plugins, EXAMPLES_DIR] })
    const otherPluginFile = join(EXAMPLES_DIR, 'echo', 'index.js')
    await t.enable('acme', 'trusted')
    const res = await fetch(`${t.url}/orgs/acme/plugins/trusted/attempts?${new URLSearchParams({ otherPluginFile })}`)
    const attempts = (await res.json()) as Attempts
    expect(attempts).toMatchObject({ otherPluginFile: { ok: true }, spawnShell: { ok: true }, writeOwnDir: { ok: true } })
    expect(existsSync(join(pluginDir, 'pwned.txt'))).toBe(true)
  })
})
