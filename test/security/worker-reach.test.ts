import { spawnSync } from 'node:child_process'
import { chmod, chown, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createPluginReach } from '../../src/workers/index.js'
import { copyPlugin, EXAMPLES_DIR, ROOT, startTestGateway, tempDir } from '../helpers/gateway.js'
import { spawnNode, workerEnv } from '../helpers/process.js'

// Only a root gateway runs its workers as other users (a range of uids, or WORKER_UID/WORKER_GID); as any
// other user they run as the gateway's own, which reaches whatever it does, so there is nothing to refuse.
const isRoot = process.getuid?.() === 0
type ErrorBody = { error: { code: string; message: string } }

/** A directory only root may enter (mkdtemp's 0700), as `mktemp -d` on CI or /root on Debian. */
async function lockedDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-locked-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** This checkout as built, installed in dir: what the gateway runs, its runner and their node_modules. */
async function installIn(dir: string): Promise<string> {
  const install = join(dir, 'p')
  for (const part of ['package.json', 'dist', 'drizzle', 'runtime', 'sdk/package.json', 'sdk/dist']) {
    await cp(join(ROOT, part), join(install, part), { recursive: true })
  }
  await symlink(join(ROOT, 'node_modules'), join(install, 'node_modules'))
  return install
}

describe('what the workers’ user can reach', () => {
  it('names the error a worker died of during start, not the last lines of Node’s dump (its version)', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'denied-on-start')
    const res = await fetch(`${t.url}/orgs/acme/plugins/denied-on-start/ping`)
    const body = (await res.json()) as ErrorBody
    expect([res.status, body.error.code]).toEqual([503, 'WORKER_START_FAILED'])
    const named =
      /exited during start \(code 1\): Error: Access to this API has been restricted \| code: 'ERR_ACCESS_DENIED' \| .*'\/etc\/hostname'/
    const lastError = (await t.instanceRow('acme', 'denied-on-start'))?.lastError
    expect(lastError).toMatch(named)
    expect(lastError).not.toContain('Node.js v')
  })

  it.runIf(isRoot)('refuses to start as root, in one coded line, when installed where the workers’ user cannot enter', async () => {
    const locked = await lockedDir()
    const install = await installIn(locked)
    const dir = await tempDir()
    const gateway = spawnNode([join(install, 'dist', 'node', 'main.js')], {
      env: workerEnv({ PORT: '0', DATABASE_URL: `file:${join(dir, 'gateway.db')}`, PLUGINS_DIR: EXAMPLES_DIR, LOG_LEVEL: 'silent' }),
    })
    // Without the check it would listen (and fail every worker start): that must fail here, not hang.
    await Promise.race([gateway.exited, gateway.waitForStdout('listening').catch(() => {})])
    expect(gateway.stdout()).not.toContain('listening')
    expect(await gateway.exited).toEqual({ code: 1, signal: null })
    const lines = gateway.stderr().trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^plugin-gateway: cannot start \(RUNNER_UNREACHABLE\): workers run as uids 1879048192-1879113727 \(gid 65534\)/,
    )
    for (const part of [
      `cannot search ${locked} (mode 0700, owner root:`,
      `on the way to ${join(install, 'sdk', 'dist', 'runner.cjs')}`,
      `chmod o+x ${locked}`,
      'WORKER_UID/WORKER_GID',
      'WORKER_SANDBOX=off',
    ]) {
      expect(lines[0]).toContain(part)
    }
  })

  it.runIf(isRoot)('lists a plugin its workers’ user cannot reach as invalid with the reason, and serves the others', async () => {
    const dir = await tempDir()
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'open')
    const locked = await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'locked')
    await chmod(locked, 0o700)
    const t = await startTestGateway({ pluginDirs: [plugins], dir })

    const listed = (await t.admin('GET', '/plugins')).body.plugins as Array<{ id: string; valid: boolean; error?: string }>
    const entry = listed.find((p) => p.id === 'locked')
    expect(entry).toMatchObject({ valid: false })
    expect(entry?.error).toContain(`cannot search ${locked} (mode 0700`)
    expect(entry?.error).toContain(`chmod o+x ${locked}`)

    const refused = await fetch(`${t.url}/orgs/acme/plugins/locked/items/1`)
    expect([refused.status, ((await refused.json()) as ErrorBody).error.code]).toEqual([404, 'PLUGIN_INVALID'])
    await t.enable('acme', 'open')
    const served = await fetch(`${t.url}/orgs/acme/plugins/open/items/1`)
    expect(served.status).toBe(200)
    await served.body?.cancel()
  })

  it.runIf(isRoot)('refuses to start a plugin whose directory became unreachable after the scan, before spawning anything', async () => {
    const dir = await tempDir()
    const plugins = join(dir, 'plugins')
    await mkdir(plugins)
    const pluginDir = await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'later')
    const t = await startTestGateway({ pluginDirs: [plugins], dir })
    await chmod(pluginDir, 0o700)
    await t.enable('acme', 'later')
    const res = await fetch(`${t.url}/orgs/acme/plugins/later/items/1`)
    const body = (await res.json()) as ErrorBody
    expect([res.status, body.error.code]).toEqual([503, 'WORKER_START_FAILED'])
    expect((await t.instanceRow('acme', 'later'))?.lastError).toContain(`cannot search ${pluginDir} (mode 0700`)
    expect(t.spawned).toEqual([])
  })

  it.runIf(isRoot)('judges a uid range as each of its uids finds it, reading as that uid', async () => {
    const dir = await tempDir()
    const plugin = join(dir, 'plugin')
    await mkdir(plugin)
    await writeFile(join(plugin, 'package.json'), '{}')
    await writeFile(join(plugin, 'index.js'), '')
    const canRead = (uid: number, gid: number) =>
      spawnSync(process.execPath, ['-e', `require('node:fs').readFileSync(${JSON.stringify(join(plugin, 'index.js'))})`], {
        uid,
        gid,
        cwd: '/',
      }).status === 0
    // [directory mode, owner uid:gid, WORKER_UID range, WORKER_GID]
    const cases: Array<[number, [number, number], [number, number], number]> = [
      [0o700, [2000, 2000], [2000, 2000], 2000], // the owner alone
      [0o700, [2000, 2000], [2000, 2001], 2000], // 2001 is not the owner
      [0o750, [2000, 2000], [2000, 2001], 2000], // 2001 gets in by the group
      [0o705, [2000, 2000], [2001, 2002], 2000], // the group class applies, and it has no rights
      [0o705, [2000, 2000], [2001, 2002], 2001], // the others class
    ]
    const judged = []
    for (const [mode, [owner, group], [min, max], gid] of cases) {
      await chown(plugin, owner, group)
      await chmod(plugin, mode)
      const predicted = createPluginReach({ uids: { min, max }, gid })({ dir: plugin, entryPath: join(plugin, 'index.js') }) === undefined
      judged.push({ predicted, actual: canRead(min, gid) && canRead(max, gid) })
    }
    expect(judged.map((j) => j.predicted)).toEqual([true, false, true, false, true])
    expect(judged.map((j) => j.predicted)).toEqual(judged.map((j) => j.actual))
  })
})
