// A worker the kernel refuses to spawn (E2BIG: one environment variable over 128 KiB, here a host
// variable the echo plugin's manifest allow-lists): node's spawn() throws instead of emitting an error,
// before any exit could give back what the sandbox took for the process.
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

const isRoot = process.getuid?.() === 0
const HUGE_HOST_VARIABLE = { ECHO_PREFIX: 'x'.repeat(200_000) }

async function refusedThrice(t: TestGateway): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${t.url}/orgs/big/plugins/echo/items/1`)
    expect([res.status, await res.json()]).toEqual([
      503,
      { error: { code: 'WORKER_START_FAILED', message: 'the worker of plugin echo could not be started' } },
    ])
  }
  // Why is the operator's to read.
  expect((await t.instanceRow('big', 'echo'))?.lastError).toMatch(/could not be spawned: .*E2BIG/)
}

describe('a worker the kernel refuses to spawn', () => {
  it.runIf(isRoot)('answers a coded 503 and gives its uid back: other organizations still start', async () => {
    const t = await startTestGateway({
      env: { WORKER_UID: '71000-71002', MAX_WORKERS: '2', PREWARM_POOL_SIZE: '0', RESTART_BACKOFF_MS: '0', ...HUGE_HOST_VARIABLE },
    })
    await t.enable('big', 'echo')
    await refusedThrice(t) // three uids, were they kept
    await t.enable('small', 'fixture-ok')
    const res = await fetch(`${t.url}/orgs/small/plugins/fixture-ok/ping`)
    expect(res.status, await res.text()).toBe(200)
  })

  it('removes the temp dir it made for the process', async () => {
    const t = await startTestGateway({ env: { PREWARM_POOL_SIZE: '0', RESTART_BACKOFF_MS: '0', ...HUGE_HOST_VARIABLE } })
    await t.enable('big', 'echo')
    await refusedThrice(t)
    const roots = readdirSync(tmpdir()).filter((name) => name.startsWith(`plugin-gateway-workers-${process.pid}-`))
    expect(roots.length).toBeGreaterThan(0)
    // Released beside the answer, not before it.
    await vi.waitFor(() => expect(roots.flatMap((root) => readdirSync(join(tmpdir(), root)))).toEqual([]), { timeout: 5_000 })
  })
})
