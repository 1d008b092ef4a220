import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { fetchJson, postJson, rawRequest } from '../helpers/http.js'
import { FIXTURES_DIR, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const fixture = (name: string) => join(FIXTURES_DIR, name)

// The fault fixtures other suites (the gateway's) build on: each does what its README line says.
describe('fault fixtures under the runner', () => {
  useNoLeftoverProcesses()

  it('fixture-ok serves /ping and sees exactly the env it was given', async () => {
    const runner = await startRunner({ pluginDir: fixture('fixture-ok'), env: { FIXTURE_ALLOWED: '1' } })
    expect((await fetchJson(runner.url('/ping'))).body).toMatchObject({ pong: true, hits: 1 })
    expect((await fetchJson(runner.url('/env'))).body).toEqual({
      keys: ['FIXTURE_ALLOWED', 'HAY_ORG_CONFIG', 'HOME', 'NODE_ENV', 'PATH', 'TMPDIR'],
    })
  })

  it('fixture-ok survives a handler that answers twice: the first answer stands, the worker keeps serving', async () => {
    const runner = await startRunner({ pluginDir: fixture('fixture-ok') })
    expect((await fetchJson(runner.url('/twice'))).body).toEqual({ first: true })
    const raw = await rawRequest({ port: runner.port, path: '/end-twice' })
    expect(raw.body.toString()).toBe('first')
    expect((await fetchJson(runner.url('/ping'))).body).toMatchObject({ pong: true })
    expect(runner.child.exitCode).toBeNull()
    expect(runner.stderr()).toContain('cannot answer twice')
    expect(runner.stderr()).toContain('write after end')
  })

  it('slow-start becomes ready once SLOW_START_MS has passed', async () => {
    const runner = await startRunner({ pluginDir: fixture('slow-start'), env: { SLOW_START_MS: '150' } })
    expect((await fetchJson(runner.url('/ping'))).body).toEqual({ pong: true })
  })

  it('top-level-await starts and serves: an entry that awaits before it exports is loaded whole', async () => {
    const runner = await startRunner({ pluginDir: fixture('top-level-await') })
    expect((await fetchJson(runner.url('/ping'))).body).toEqual({ pong: true, awaited: 'settled before the export' })
  })

  it('commonjs-entry starts and serves: module.exports is its default export', async () => {
    const runner = await startRunner({ pluginDir: fixture('commonjs-entry') })
    expect((await fetchJson(runner.url('/ping'))).body).toEqual({ pong: true })
  })

  it('crash-mid-request dies with the request in flight', async () => {
    for (const how of ['exit', 'throw']) {
      const runner = await startRunner({ pluginDir: fixture('crash-mid-request') })
      await expect(rawRequest({ port: runner.port, path: `/crash?how=${how}` })).rejects.toMatchObject({ code: 'ECONNRESET' })
      expect((await runner.exited).code, how).toBe(1)
    }
  })

  it('bad-metadata runs, and its /metadata carries the invalid declarations as given', async () => {
    const runner = await startRunner({ pluginDir: fixture('bad-metadata') })
    const { body } = await fetchJson<{ configSchema: unknown; routes: unknown }>(runner.url('/metadata'))
    expect(body.configSchema).toEqual({ mood: { type: 'banana', label: 'Mood' } })
    expect(body.routes).toEqual([{ path: '/no-method' }, { method: 'GET', path: '/ping' }])
    expect((await fetchJson(runner.url('/ping'))).status).toBe(200)
  })

  it('regex-route runs, lists its {regex} route in /metadata, and neither serves it nor hides why', async () => {
    const runner = await startRunner({ pluginDir: fixture('regex-route') })
    const { body } = await fetchJson<{ routes: unknown }>(runner.url('/metadata'))
    expect(body.routes).toEqual([
      { method: 'GET', path: '/ping' },
      { method: 'GET', path: '/items/:id{[0-9]+}' },
    ])
    expect((await fetchJson(runner.url('/ping'))).status).toBe(200)
    for (const path of ['/items/1', '/items/:id{[0-9]+}']) {
      expect(await rawRequest({ port: runner.port, path })).toMatchObject({ status: 404 })
    }
    expect(runner.stderr()).toContain('route GET /items/:id{[0-9]+} is not served')
  })

  it('ignores-sigterm survives SIGTERM, still answers /disable, and dies only by SIGKILL', async () => {
    const runner = await startRunner({ pluginDir: fixture('ignores-sigterm') })
    runner.child.kill('SIGTERM')
    // The handler runs on the worker's event loop; ask until it reports having swallowed it.
    await vi.waitFor(async () => expect((await fetchJson<{ sigterms: number }>(runner.url('/ping'))).body.sigterms).toBe(1), {
      timeout: 10_000,
      interval: 10,
    })
    expect(await postJson(runner.url('/disable'), {})).toMatchObject({ status: 200, body: { success: true } })
    runner.child.kill('SIGKILL')
    expect(await runner.exited).toEqual({ code: null, signal: 'SIGKILL' })
  })

  it('memory-hog grows its heap on every call', async () => {
    const runner = await startRunner({ pluginDir: fixture('memory-hog') })
    const first = (await fetchJson<{ heapUsed: number }>(runner.url('/grow?mb=8'))).body.heapUsed
    const second = (await fetchJson<{ heapUsed: number }>(runner.url('/grow?mb=8'))).body.heapUsed
    expect(second - first).toBeGreaterThan(4 * 1024 * 1024)
  })

  it('memory-hog dies of its leak under a heap limit', async () => {
    const runner = await startRunner({ pluginDir: fixture('memory-hog'), env: { NODE_OPTIONS: '--max-old-space-size=64' } })
    expect((await postJson(runner.url('/leak'), {})).status).toBe(202)
    const exit = await runner.exited
    expect(exit.code !== 0 || exit.signal !== null).toBe(true)
  })

  it('slow-route answers /slow after the requested delay', async () => {
    const runner = await startRunner({ pluginDir: fixture('slow-route') })
    expect((await fetchJson(runner.url('/slow?ms=50'))).body).toEqual({ sleptMs: 50 })
  })
})
