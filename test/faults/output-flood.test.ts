import { describe, expect, it, vi } from 'vitest'
import { LOGGED_LINES_PER_WINDOW, OUTPUT_BYTES_PER_WINDOW, OUTPUT_WINDOW_MS } from '../../src/workers/output.js'
import { startTestGateway } from '../helpers/gateway.js'
import { capturedLogger } from '../helpers/log.js'
import { createManualClock } from '../helpers/manual-clock.js'

const WAIT = { timeout: 10_000, interval: 10 }
const FLOOD_MIB = 32
const LINE_BYTES = 128 // the fixture's

describe('a worker that floods its stdout and stderr', () => {
  it('is read at a bounded pace and logged in bounded lines, while the gateway serves others', async () => {
    const clock = createManualClock(Date.now())
    const { log, records } = capturedLogger('debug')
    const t = await startTestGateway({ clock, log, env: { PREWARM_POOL_SIZE: '0' } })
    await t.enable('acme', 'output-flood')
    await t.enable('acme', 'fixture-ok')
    const flood = `${t.url}/orgs/acme/plugins/output-flood`
    const progress = async () => (await (await fetch(`${flood}/progress`)).json()) as { lines: number; done: boolean; flushed: boolean }
    const outputOf = (msg: string) => records().filter((r) => r.msg === msg && r.pluginId === 'output-flood')

    const started = await fetch(`${flood}/flood?mib=${FLOOD_MIB}`, { method: 'POST' })
    expect(started.status).toBe(202)
    const { lines: total } = (await started.json()) as { lines: number }

    // Time stands still: the gateway reads one window's budget of the flood, then leaves its pipes
    // unread. The flood waits in the worker (which still answers); the gateway serves the others.
    await vi.waitFor(() => expect(outputOf('worker writes output faster than the gateway reads it; slowing it')).toHaveLength(1), WAIT)
    for (let i = 0; i < 20; i++) expect((await fetch(`${t.url}/orgs/acme/plugins/fixture-ok/ping`)).status).toBe(200)
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200)
    const held = await progress()
    expect(held.done).toBe(false)
    expect(held.lines * LINE_BYTES).toBeLessThan(FLOOD_MIB * 1024 * 1024)
    expect(outputOf('worker output').length).toBeLessThanOrEqual(LOGGED_LINES_PER_WINDOW)

    // Each window lets one more budget through, until the flood has been read whole.
    // (the last MiB or so may wait in the pipes and the worker's buffers).
    let advanced = 0
    await vi.waitFor(async () => {
      clock.advance(OUTPUT_WINDOW_MS)
      advanced++
      expect(await progress()).toMatchObject({ done: true, flushed: true })
    }, WAIT)
    expect(advanced).toBeGreaterThanOrEqual((FLOOD_MIB * 1024 * 1024) / OUTPUT_BYTES_PER_WINDOW - 2)

    // Every line is either logged or counted as dropped (the last window's count once its pipes close),
    // and at most the cap per window is logged.
    await t.gw.close()
    const logged = () => outputOf('worker output').length
    const dropped = () => outputOf('worker output dropped').reduce((sum, r) => sum + (r.droppedLines as number), 0)
    await vi.waitFor(() => expect(logged() + dropped()).toBe(total), WAIT)
    expect(logged()).toBeLessThanOrEqual(LOGGED_LINES_PER_WINDOW * (advanced + 2))
  })
})
