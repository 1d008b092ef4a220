import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fetchJson, rawRequest } from '../helpers/http.js'
import { EXAMPLES_DIR, listeningPorts, spawnNode, workerEnv } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const pluginDir = join(EXAMPLES_DIR, 'legacy-v1')

/** Starts it the legacy way (CONTRACT.md §2): `node <entry>` with PORT, HAY_ORG_CONFIG, HAY_ORG_AUTH. */
async function startLegacy(config: Record<string, unknown> = {}) {
  const worker = spawnNode([join(pluginDir, 'index.js')], {
    cwd: pluginDir,
    env: workerEnv({
      PORT: '0',
      HAY_ORG_CONFIG: JSON.stringify({ org: { id: 'org-legacy' }, config }),
      HAY_ORG_AUTH: JSON.stringify({ methodId: 'apiKey', credentials: { apiKey: 'k' } }),
    }),
  })
  await worker.waitForStdout('listening on 127.0.0.1:')
  const ports = listeningPorts(worker.child.pid as number) // PORT=0: the one the OS gave it
  expect(ports).toHaveLength(1)
  const port = ports[0] as number
  return { ...worker, port, url: (path: string) => `http://127.0.0.1:${port}${path}` }
}

describe('legacy-v1 example', () => {
  useNoLeftoverProcesses()

  it('embeds its metadata in the manifest (configSchema, auth, routes) and no SDK v2 entry contract', () => {
    const block = JSON.parse(readFileSync(join(pluginDir, 'package.json'), 'utf8'))['hay-plugin']
    expect(Object.keys(block.configSchema)).toEqual(['greeting', 'apiKey'])
    expect(block.auth).toEqual([{ type: 'apiKey', id: 'apiKey', label: 'API key', configField: 'apiKey' }])
    expect(block.routes).toEqual([
      { method: 'GET', path: '/hello' },
      { method: 'POST', path: '/echo' },
    ])
  })

  it('answers /health and its declared routes on 127.0.0.1:$PORT', async () => {
    const worker = await startLegacy({ greeting: 'howdy' })
    expect((await fetchJson(worker.url('/health'))).body).toEqual({ status: 'healthy', pid: worker.child.pid, orgId: 'org-legacy' })
    expect((await fetchJson(worker.url('/hello'))).body).toEqual({ greeting: 'howdy', orgId: 'org-legacy', hasAuth: true })
    const body = Buffer.from([0x7b, 0x20, 0x00, 0xff, 0x7d])
    const echoed = await rawRequest({
      port: worker.port,
      method: 'POST',
      path: '/echo',
      body,
      headers: { 'content-type': 'application/x-test' },
    })
    expect(echoed.body.equals(body)).toBe(true)
    expect((await fetchJson(worker.url('/nope'))).status).toBe(404)
  })

  it('exits 0 on SIGTERM', async () => {
    const worker = await startLegacy()
    worker.child.kill('SIGTERM')
    expect(await worker.exited).toEqual({ code: 0, signal: null })
  })
})
