import { execFileSync } from 'node:child_process'
import { appendFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { watchPlugins } from '../../src/catalog/index.js'
import type { Clock } from '../../src/core/index.js'
import { silentLogger } from '../../src/core/index.js'
import { createManualClock } from '../helpers/manual-clock.js'

const WAIT = { timeout: 5_000, interval: 5 }
const DEBOUNCE_MS = 10

async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pg-watch-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** <root>/<id>: a manifest and its entry, index.js. */
async function plugin(root: string, id: string): Promise<string> {
  const dir = join(root, id)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: id, 'hay-plugin': { entry: './index.js' } }))
  await writeFile(join(dir, 'index.js'), 'export default 1\n')
  return dir
}

/** Replaces path by a file written elsewhere: one event where it lands. */
async function replaceFile(path: string, content: string): Promise<void> {
  const staged = join(await tempRoot(), 'staged')
  await writeFile(staged, content)
  await rename(staged, path)
}

/** watchPlugins on a manual clock, counting the changes it saw (each arms its debounce) and its rescans. */
async function watching(dirs: string[]) {
  const clock = createManualClock()
  let changes = 0
  let rescans = 0
  const counting: Clock = {
    now: clock.now,
    setTimer: (ms, fn) => {
      changes++
      return clock.setTimer(ms, fn)
    },
  }
  const watcher = await watchPlugins({
    dirs,
    debounceMs: DEBOUNCE_MS,
    clock: counting,
    log: silentLogger,
    onChange: async () => void rescans++,
  })
  onTestFinished(() => watcher.close())
  return {
    changes: () => changes,
    /** Waits for a change to be seen, lets the debounce pass, and waits for the rescan it runs. */
    async rescanned(times: number) {
      await vi.waitFor(() => expect(clock.pending()).toHaveLength(1), WAIT)
      clock.advance(DEBOUNCE_MS)
      await vi.waitFor(() => expect(rescans).toBe(times), WAIT)
    },
  }
}

describe('watchPlugins', () => {
  it('sees a swap of the link PLUGINS_DIR is (a deploy: ln -sfn), atomic or not, and watches the new target', async () => {
    const base = await tempRoot()
    await plugin(join(base, 'v1'), 'echo')
    const v2 = await plugin(join(base, 'v2'), 'echo')
    const current = join(base, 'current')
    await symlink(join(base, 'v1'), current)
    const w = await watching([current])

    await symlink(join(base, 'v2'), join(base, 'next'))
    await rename(join(base, 'next'), current) // atomic
    await w.rescanned(1)

    await replaceFile(join(v2, 'index.js'), 'export default 2\n')
    await w.rescanned(2)

    execFileSync('ln', ['-sfn', join(base, 'v1'), current]) // unlink, then link
    await w.rescanned(3)
  })

  it("starts no rescan for what a plugin writes beside its code (logs, caches), only for its code's changes", async () => {
    const root = await tempRoot()
    const dir = await plugin(root, 'echo')
    await mkdir(join(dir, 'logs'))
    const w = await watching([root])

    // What a plugin running with the sandbox off may write into its own directory.
    await appendFile(join(dir, 'app.log'), 'started\n')
    await appendFile(join(dir, 'logs', 'today.log'), 'started\n')
    await mkdir(join(dir, '.cache'))
    await writeFile(join(dir, '.cache', 'state.json'), '{}')
    await writeFile(join(dir, 'sessions.tmp'), 'x')
    // Then a deploy replaces its entry: the one change seen, after those (events arrive in order).
    await replaceFile(join(dir, 'index.js'), 'export default 2\n')
    await w.rescanned(1)
    expect(w.changes()).toBe(1)
  })
})
