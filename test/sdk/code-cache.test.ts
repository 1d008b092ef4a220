import { appendFileSync, copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { EXAMPLES_DIR, RUNNER_PATH, spawnNode, spawnRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const DIST = dirname(RUNNER_PATH)
const CACHE = 'runner-bundle.cache'
const echo = join(EXAMPLES_DIR, 'echo')

/** Whether V8 rejected `cache` for the bundle beside `runner`, as the runner's executable compiles it. */
async function cacheRejected(runner: string, cache: string): Promise<string> {
  const probe = spawnNode([
    '-e',
    `const r = require(${JSON.stringify(runner)})
     process.stdout.write(String(r.compileBundle(require('node:fs').readFileSync(${JSON.stringify(cache)})).cachedDataRejected))`,
  ])
  expect(await probe.exited).toEqual({ code: 0, signal: null })
  return probe.stdout()
}

/** A copy of the runner's files (no cache) in a directory of its own. */
function copyOfRunner(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runner-copy-'))
  copies.push(dir)
  for (const file of readdirSync(DIST).filter((f) => /^runner.*\.cjs$/.test(f))) copyFileSync(join(DIST, file), join(dir, file))
  return dir
}
const copies: string[] = []
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true })
})

async function servesEcho(runnerPath: string): Promise<void> {
  const runner = spawnRunner({
    pluginDir: echo,
    port: 0,
    args: [runnerPath, `--plugin-path=${echo}`, '--org-id=org-1', '--port=0', '--mode=production'],
  })
  const { port } = await runner.ready
  const res = await fetch(`http://127.0.0.1:${port}/items/7?q=1`)
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual({ prefix: 'echo', id: '7', query: { q: '1' } })
  runner.child.kill('SIGTERM')
  expect(await runner.exited).toEqual({ code: 0, signal: null })
}

describe("the runner's V8 code cache", () => {
  useNoLeftoverProcesses()

  it('is built beside the bundle, and the node that built it accepts it', async () => {
    expect(await cacheRejected(RUNNER_PATH, join(DIST, CACHE))).toBe('false')
  })

  it('is refused for a bundle it was not made from, and that runner starts and serves from source', async () => {
    const dir = copyOfRunner()
    appendFileSync(join(dir, 'runner-bundle.cjs'), '\n// rebuilt\n')
    copyFileSync(join(DIST, CACHE), join(dir, CACHE))
    expect(await cacheRejected(join(dir, 'runner.cjs'), join(dir, CACHE))).toBe('true')
    await servesEcho(join(dir, 'runner.cjs'))
  })

  it('may be missing: the runner starts and serves from source', async () => {
    await servesEcho(join(copyOfRunner(), 'runner.cjs'))
  })
})
