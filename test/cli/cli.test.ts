import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { copyPlugin, EXAMPLES_DIR, exitOf, FIXTURES_DIR, ROOT, startTestGateway, TEST_SECRET_KEY, tempDir } from '../helpers/gateway.js'
import { startDroppingServer } from '../helpers/http.js'

// The compiled binary, as `npx plugin-gateway` runs it (package.json "bin"; built by `npm run build`).
const CLI = join(ROOT, 'dist', 'cli', 'main.js')
const TOKEN = 'cli-admin-token-0123456789'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })
}

async function gatewayWithToken() {
  const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
  const env = { GATEWAY_URL: t.url, ADMIN_TOKEN: TOKEN }
  return { t, env, run: (...args: string[]) => cli(args, env) }
}

describe('plugin-gateway CLI against a real gateway', () => {
  it('lists plugins with their metadata state, as a table or as the API JSON', async () => {
    const { t, run } = await gatewayWithToken()
    const before = await run('plugins')
    expect(before).toMatchObject({ code: 0, stderr: '' })
    expect(before.stdout.split('\n')[0]).toMatch(/^PLUGIN\s+VERSION\s+SDK\s+METADATA\s+FETCHED\s+ERROR$/)
    expect(before.stdout).toMatch(/^echo\s+1\.0\.0\s+v2\s+missing\s+-/m)
    expect(before.stdout).toMatch(/^bad-manifest\s+-\s+-\s+invalid/m)

    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).arrayBuffer()
    expect((await run('plugins')).stdout).toMatch(/^echo\s+1\.0\.0\s+v2\s+fresh\s+\d+s ago/m)

    const json = await run('plugins', '--json')
    expect(JSON.parse(json.stdout)).toEqual((await t.admin('GET', '/plugins')).body)
  })

  it('enables a plugin for an org with --config (k=v strings, k:=json values)', async () => {
    const { t, run } = await gatewayWithToken()
    const res = await run('enable', 'acme', 'echo', '--config', 'prefix=from-cli')
    expect(res).toEqual({ code: 0, stdout: 'enabled echo for acme (runtime stopped)\n', stderr: '' })
    expect(await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).json()).toMatchObject({ prefix: 'from-cli' })

    expect((await run('enable', 'globex', 'echo', '--config', 'prefix:="json string"')).code).toBe(0)
    expect(await (await fetch(`${t.url}/orgs/globex/plugins/echo/items/1`)).json()).toMatchObject({ prefix: 'json string' })

    const invalid = await run('enable', 'acme', 'echo', '--config', 'prefix:=7') // echo's prefix is a string
    expect(invalid.code).toBe(1)
    expect(invalid.stderr).toMatch(/^plugin-gateway: CONFIG_INVALID: .+\n$/)
  })

  it('shows live workers and stops one', async () => {
    const { t, run } = await gatewayWithToken()
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).arrayBuffer()

    const workers = await run('workers')
    const [header, row, ...rest] = workers.stdout.trimEnd().split('\n')
    expect(header).toMatch(/^ORG\s+PLUGIN\s+GEN\s+STATE\s+PID\s+UPTIME\s+IN-FLIGHT\s+LAST ACTIVITY$/)
    expect(row).toMatch(new RegExp(`^acme\\s+echo\\s+\\d+\\s+ready\\s+${t.spawned[0]?.pid}\\s+\\d+s\\s+0\\s+\\d+s ago$`))
    expect(rest).toEqual([])
    expect(JSON.parse((await run('workers', '--json')).stdout).workers).toHaveLength(1)

    const exited = exitOf(t.spawned[0]!)
    expect(await run('stop', 'acme', 'echo')).toEqual({ code: 0, stdout: 'stopped acme/echo\n', stderr: '' })
    await exited
    expect((await run('workers')).stdout).toBe('no live workers\n')
    expect((await run('stop', 'acme', 'echo')).stdout).toBe('acme/echo had no live worker\n')
  })

  it('refreshes a plugin’s metadata', async () => {
    const { t, run } = await gatewayWithToken()
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).arrayBuffer()
    // A worker of the plugin runs, so the metadata is fetched again right away.
    expect(await run('refresh', 'echo')).toEqual({ code: 0, stdout: 'echo: metadata fresh\n', stderr: '' })
    const unknown = await run('refresh', 'nope')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toBe('plugin-gateway: PLUGIN_NOT_FOUND: no plugin nope\n')
  })

  it('rescans the plugin directories, listing what changed, and restarts a plugin’s workers', async () => {
    const plugins = join(await tempDir(), 'plugins')
    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    const t = await startTestGateway({ pluginDirs: [plugins], env: { ADMIN_TOKEN: TOKEN } })
    const run = (...args: string[]) => cli(args, { GATEWAY_URL: t.url, ADMIN_TOKEN: TOKEN })
    expect(await run('rescan')).toEqual({ code: 0, stdout: 'added: -\nchanged: -\nremoved: -\ninvalid: -\n', stderr: '' })

    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo-two')
    await copyPlugin(join(FIXTURES_DIR, 'bad-manifest'), plugins, 'broken')
    const listed = await run('rescan')
    const broken = (await t.admin('GET', '/plugins')).body.plugins.find((p: { id: string }) => p.id === 'broken')
    expect(broken).toMatchObject({ valid: false, error: expect.any(String) })
    expect(listed).toEqual({
      code: 0,
      stdout: `added: echo-two\nchanged: -\nremoved: -\ninvalid: broken\n  broken: ${broken.error}\n`,
      stderr: '',
    })
    expect(JSON.parse((await run('rescan', '--json')).stdout)).toEqual({
      added: [],
      changed: [],
      removed: [],
      invalid: [{ id: 'broken', error: expect.any(String) }],
    })

    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).arrayBuffer()
    const exited = exitOf(t.spawned[0]!)
    expect(await run('restart', 'echo')).toEqual({ code: 0, stdout: 'echo: 1 live worker rolled\n', stderr: '' })
    expect(await exited).toEqual({ code: 0, signal: null }) // drained and stopped through /disable
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/2`)).status).toBe(200) // a new worker
    expect(t.spawned).toHaveLength(2)
    const unknown = await run('restart', 'nope')
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'plugin-gateway: PLUGIN_NOT_FOUND: no plugin nope\n' })
  })

  it('fails with one line and exit code 1 when the gateway is unreachable or the token is wrong', async () => {
    const { t } = await gatewayWithToken()
    const closed = await startDroppingServer()
    const [down, wrong, missing, flagsWin, jsonError] = await Promise.all([
      cli(['workers'], { GATEWAY_URL: closed, ADMIN_TOKEN: TOKEN }),
      cli(['workers'], { GATEWAY_URL: t.url, ADMIN_TOKEN: 'wrong-token-0123456789' }),
      cli(['workers'], { GATEWAY_URL: t.url }),
      cli(['workers', '--url', t.url, '--token', TOKEN], { GATEWAY_URL: closed, ADMIN_TOKEN: 'wrong-token-0123456789' }),
      cli(['workers', '--json'], { GATEWAY_URL: closed }),
    ])
    expect(down).toEqual({
      code: 1,
      stdout: '',
      stderr: `plugin-gateway: cannot reach the gateway at ${closed} (UND_ERR_SOCKET); is it running? (--url / GATEWAY_URL)\n`,
    })
    expect(wrong).toEqual({ code: 1, stdout: '', stderr: 'plugin-gateway: the admin token was rejected (--token / ADMIN_TOKEN)\n' })
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'plugin-gateway: the gateway needs an admin token (--token / ADMIN_TOKEN)\n' })
    expect(flagsWin).toMatchObject({ code: 0, stdout: 'no live workers\n' })
    expect(jsonError.code).toBe(1)
    expect(JSON.parse(jsonError.stderr)).toMatchObject({ error: { code: 'UNREACHABLE' } })

    // --url pointing at another service that answers JSON: one line too, never a stack trace.
    const other = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}'))
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => other.close(() => resolve())))
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
    expect(await cli(['workers'], { GATEWAY_URL: otherUrl })).toEqual({
      code: 1,
      stdout: '',
      stderr: `plugin-gateway: ${otherUrl} gave an answer this CLI does not understand; is it a plugin-gateway?\n`,
    })
  })

  it('refuses a bad command line with exit code 2 before calling anything', async () => {
    const results = await Promise.all([
      cli(['frobnicate']),
      cli(['stop', 'acme']),
      cli(['enable', 'Acme!', 'echo']),
      cli(['enable', 'acme', 'echo', '--config', 'novalue']),
      cli(['workers', '--bogus']),
      cli(['workers', '--url', 'ftp://x']),
    ])
    expect(results.map((r) => r.code)).toEqual([2, 2, 2, 2, 2, 1])
    for (const r of results) expect(r.stderr).toMatch(/^plugin-gateway: [^\n]+\n$/)
    expect((await cli(['--help'])).stdout).toContain('Usage: plugin-gateway <command>')
  })

  it('start runs the gateway in the foreground until SIGTERM', async () => {
    const dir = await tempDir()
    const child = spawn(process.execPath, [CLI, 'start'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        PORT: '0',
        DATABASE_URL: `file:${join(dir, 'gateway.db')}`,
        SECRET_KEY: TEST_SECRET_KEY,
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = exitOf(child)
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    // The first line, or the exit that came instead of it.
    const first = await Promise.race([
      once(child.stdout!, 'data').then(([chunk]) => String(chunk)),
      exited.then((e) => `exited ${JSON.stringify(e)}`),
    ])
    const url = /^plugin-gateway listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(first)?.[1]
    expect([first, url]).toEqual([first, expect.any(String)])

    const plugins = await cli(['plugins'], { GATEWAY_URL: url ?? '' })
    expect(plugins.stdout).toMatch(/^echo\s+1\.0\.0\s+v2\s+missing/m)
    child.kill('SIGTERM')
    expect(await exited).toEqual({ code: 0, signal: null })
  })
})
