import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EXAMPLES_DIR, FIXTURES_DIR, RUNNER_PATH, spawnRunner, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const echo = join(EXAMPLES_DIR, 'echo')

/** Spawns the runner, waits for it to exit and returns the exit code and the failure code it printed. */
async function failure(options: Parameters<typeof spawnRunner>[0]): Promise<{ code: number | null; reason: string | undefined }> {
  const runner = spawnRunner(options)
  const exit = await runner.exited
  const line = runner
    .stderr()
    .split('\n')
    .find((l) => l.startsWith('plugin-runner: '))
  return { code: exit.code, reason: line?.match(/^plugin-runner: (?:init|runtime) failed: ([A-Z_]+): /)?.[1] }
}

const args = (...extra: string[]) => [RUNNER_PATH, ...extra]

describe('runner on bad input: exits with one line on stderr, never hangs', () => {
  useNoLeftoverProcesses()

  it.each([
    ['no arguments', args()],
    ['no --port', args(`--plugin-path=${echo}`, '--org-id=org-1')],
    ['no --org-id', args(`--plugin-path=${echo}`, '--port=4000')],
    ['no --plugin-path', args('--org-id=org-1', '--port=4000')],
    ['a port that is not a number', args(`--plugin-path=${echo}`, '--org-id=org-1', '--port=http')],
    ['a port out of range', args(`--plugin-path=${echo}`, '--org-id=org-1', '--port=70000')],
    ['an unknown argument', args(`--plugin-path=${echo}`, '--org-id=org-1', '--port=4000', '--verbose')],
    ['an unknown mode', args(`--plugin-path=${echo}`, '--org-id=org-1', '--port=4000', '--mode=dev')],
  ])('exits 1 with BAD_ARGS given %s', async (_name, argv) => {
    expect(await failure({ pluginDir: echo, port: 0, args: argv })).toEqual({ code: 1, reason: 'BAD_ARGS' })
  })

  it.each([
    ['a malformed package.json', 'bad-manifest', 'MANIFEST_INVALID'],
    ['an entry file that does not exist', 'missing-entry', 'ENTRY_NOT_FOUND'],
    ['an entry outside the plugin directory', 'entry-outside', 'MANIFEST_INVALID'],
    ['an entry without a default export', 'no-default-export', 'NO_DEFAULT_EXPORT'],
    ['an onInitialize that throws', 'init-throws', 'INIT_FAILED'],
    ['an onStart that throws', 'crash-on-start', 'START_FAILED'],
  ])('exits 1 given %s (%s)', async (_name, fixture, reason) => {
    expect(await failure({ pluginDir: join(FIXTURES_DIR, fixture), port: 0 })).toEqual({ code: 1, reason })
  })

  it('exits 1 when the plugin directory does not exist', async () => {
    expect(await failure({ pluginDir: join(FIXTURES_DIR, 'no-such-plugin'), port: 0 })).toEqual({
      code: 1,
      reason: 'MANIFEST_INVALID',
    })
  })

  it('exits 1 when HAY_ORG_CONFIG or HAY_ORG_AUTH is not JSON', async () => {
    for (const env of [{ HAY_ORG_CONFIG: '{"org":' }, { HAY_ORG_CONFIG: '[1]' }, { HAY_ORG_AUTH: 'nope' }]) {
      expect(await failure({ pluginDir: echo, port: 0, env })).toEqual({ code: 1, reason: 'ORG_ENV_INVALID' })
    }
  })

  it('starts with an empty config for --org-id when HAY_ORG_CONFIG is absent', async () => {
    const runner = await startRunner({ pluginDir: echo, orgId: 'org-7', env: { HAY_ORG_CONFIG: undefined } })
    const health = await fetch(runner.url('/health')).then((r) => r.json())
    expect(health).toMatchObject({ orgId: 'org-7' })
  })
})
