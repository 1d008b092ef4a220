import { once } from 'node:events'
import { createServer } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { PrewarmedMessage, ReadyMessage, type SpecializeMessage } from '../../src/contract/index.js'
import { rawRequest } from '../helpers/http.js'
import {
  EXAMPLES_DIR,
  FIXTURES_DIR,
  isAlive,
  listeningPorts,
  RUNNER_PATH,
  spawnNode,
  spawnRunner,
  startRunner,
  workerEnv,
} from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const echo = join(EXAMPLES_DIR, 'echo')
const externalIPv4 = Object.values(networkInterfaces())
  .flat()
  .find((i) => i?.family === 'IPv4' && !i.internal)?.address

describe('runner process lifecycle', () => {
  useNoLeftoverProcesses()

  it('exits 0 on SIGTERM', async () => {
    const runner = await startRunner({ pluginDir: echo })
    runner.child.kill('SIGTERM')
    expect(await runner.exited).toEqual({ code: 0, signal: null })
  })

  it('exits 0 on SIGTERM while a keep-alive connection is idle', async () => {
    const runner = await startRunner({ pluginDir: echo })
    const res = await fetch(runner.url('/health')) // undici keeps the socket open afterwards
    await res.text()
    runner.child.kill('SIGTERM')
    expect(await runner.exited).toEqual({ code: 0, signal: null })
  })

  it('exits by itself when the parent disconnects its IPC channel', async () => {
    const runner = await startRunner({ pluginDir: echo })
    runner.child.disconnect()
    expect(await runner.exited).toEqual({ code: 0, signal: null })
    expect(isAlive(runner.child.pid as number)).toBe(false)
  })

  it('exits on SIGTERM while onStart is still pending', async () => {
    const runner = spawnRunner({ pluginDir: join(FIXTURES_DIR, 'never-ready'), port: 0 })
    await runner.waitForStdout('never-ready: onStart entered')
    expect(listeningPorts(runner.child.pid as number)).toEqual([]) // not serving yet
    runner.child.kill('SIGTERM')
    expect(await runner.exited).toEqual({ code: 0, signal: null })
  })

  it('exits when the parent disconnects while onStart is still pending', async () => {
    const runner = spawnRunner({ pluginDir: join(FIXTURES_DIR, 'never-ready'), port: 0 })
    await runner.waitForStdout('never-ready: onStart entered')
    runner.child.disconnect()
    expect((await runner.exited).code).toBe(0)
  })

  it('exits 1 when onStart can never settle, instead of lingering on its IPC channel', async () => {
    const runner = spawnRunner({ pluginDir: join(FIXTURES_DIR, 'start-never-settles'), port: 0 })
    expect((await runner.exited).code).toBe(1)
    expect(runner.stderr()).toMatch(/^plugin-runner: init failed: NEVER_SETTLED: /m)
  })

  it('runs without an IPC channel and serves all the same', async () => {
    const runner = spawnRunner({ pluginDir: echo, port: 0, ipc: false })
    // No ready message without IPC: wait for its listener, then ask /health (what the gateway does for Hay).
    const pid = runner.child.pid as number
    const [port] = await vi.waitFor(
      () => {
        const ports = listeningPorts(pid)
        expect(ports).toHaveLength(1)
        return ports
      },
      { timeout: 10_000, interval: 10 },
    )
    expect((await rawRequest({ port: port!, path: '/health' })).status).toBe(200)
    runner.child.kill('SIGTERM')
    expect((await runner.exited).code).toBe(0)
  })

  it('listens on 127.0.0.1 only', async () => {
    const runner = await startRunner({ pluginDir: echo })
    expect((await rawRequest({ port: runner.port, path: '/health' })).status).toBe(200)
    await expect(rawRequest({ host: '::1', port: runner.port, path: '/health' })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    if (externalIPv4) {
      await expect(rawRequest({ host: externalIPv4, port: runner.port, path: '/health' })).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    }
  })

  it('exits 2 with LISTEN_FAILED when its port is taken', async () => {
    const squatter = createServer()
    squatter.listen(0, '127.0.0.1')
    await once(squatter, 'listening')
    try {
      const port = (squatter.address() as { port: number }).port
      const runner = spawnRunner({ pluginDir: echo, port })
      expect((await runner.exited).code).toBe(2)
      expect(runner.stderr()).toMatch(/^plugin-runner: runtime failed: LISTEN_FAILED: /m)
    } finally {
      squatter.close()
    }
  })

  it('ignores HAY_ORG_CONFIG in --mode=test, as Hay does', async () => {
    const args = [RUNNER_PATH, `--plugin-path=${echo}`, '--org-id=org-test', '--port=0', '--mode=test']
    const runner = spawnRunner({ pluginDir: echo, port: 0, args, config: { prefix: 'ignored' } })
    const { port } = await runner.ready
    expect(await (await fetch(`http://127.0.0.1:${port}/items/1`)).json()).toMatchObject({ prefix: 'echo' })
    expect(await (await fetch(`http://127.0.0.1:${port}/health`)).json()).toMatchObject({ orgId: 'org-test' })
  })

  it('reports the real port in the ready message when asked for port 0', async () => {
    const runner = spawnRunner({ pluginDir: echo, port: 0 })
    const { port } = await runner.ready
    expect(port).toBeGreaterThan(0)
    expect((await rawRequest({ port, path: '/health' })).status).toBe(200)
  })

  it('with --prewarm, announces itself and becomes the worker a valid specialize message describes, ignoring malformed ones', async () => {
    const runner = spawnNode([RUNNER_PATH, '--prewarm'], { env: workerEnv(), ipc: true })
    const messages: unknown[] = []
    runner.child.on('message', (msg) => messages.push(msg))
    const exited = runner.exited.then(() => messages)
    const prewarmed = new Promise((resolvePrewarmed) =>
      runner.child.on('message', (msg) => PrewarmedMessage.safeParse(msg).success && resolvePrewarmed(msg)),
    )
    await Promise.race([prewarmed, exited.then(() => Promise.reject(new Error(`exited: ${runner.stderr()}`)))])

    // Applied, either would end the process (an unknown argument is BAD_ARGS, exit 1).
    runner.child.send({ type: 'specialize', argv: ['--bogus'], env: { N: 1 }, cwd: echo })
    runner.child.send({ type: 'specialize', argv: '--bogus', env: {}, cwd: echo })
    const config = JSON.stringify({ org: { id: 'org-warm' }, config: {} })
    const specialize: SpecializeMessage = {
      type: 'specialize',
      argv: [`--plugin-path=${echo}`, '--org-id=org-warm', '--port=0', '--mode=production'],
      env: { HAY_ORG_CONFIG: config },
      cwd: echo,
    }
    runner.child.send(specialize)
    const ready = await new Promise<ReadyMessage>((resolveReady, reject) => {
      runner.child.on('message', (msg) => {
        const parsed = ReadyMessage.safeParse(msg)
        if (parsed.success) resolveReady(parsed.data)
      })
      void exited.then(() => reject(new Error(`exited before ready: ${runner.stderr()}`)))
    })
    expect(JSON.parse((await rawRequest({ port: ready.port, path: '/health' })).body.toString())).toMatchObject({ orgId: 'org-warm' })
    runner.child.kill('SIGTERM')
    expect((await runner.exited).code).toBe(0)
  })
})
