import { appendFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { scanPlugins } from '../../src/catalog/index.js'
import { silentLogger } from '../../src/core/index.js'
import { createCatalogRepo, createInstancesRepo, createPluginsRepo } from '../../src/db/index.js'
import { createPluginCatalog, createTargets } from '../../src/gateway/index.js'
import { createRegistry } from '../../src/registry/index.js'
import { openTempDb } from '../db/harness.js'
import { copyPlugin, EXAMPLES_DIR, tempDir } from '../helpers/gateway.js'
import { createManualClock } from '../helpers/manual-clock.js'

const FOLLOW_MS = 1_000

// A gateway following the rescans another gateway on its database announced (README: Several gateways).
it('a follower whose rescan failed (its plugins directory unreadable for a moment) rescans again on its next turn', async () => {
  const root = await tempDir()
  const plugins = join(root, 'plugins')
  const pluginDir = await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
  const handle = await openTempDb()
  const clock = createManualClock(1_700_000_000_000)
  const repo = createCatalogRepo(handle.db, clock)
  const registry = createRegistry({
    plugins: createPluginsRepo(handle.db, clock),
    instances: createInstancesRepo(handle.db, clock),
    log: silentLogger,
  })
  const seen = await repo.generations()
  await registry.load(await scanPlugins([plugins]))
  const before = registry.plugin('echo')?.checksum
  const rolled: string[] = []
  const catalog = createPluginCatalog({
    registry,
    targets: createTargets(registry),
    pool: { roll: (id) => rolled.push(id) },
    scan: () => scanPlugins([plugins]),
    clock,
    log: silentLogger,
    cluster: { repo, seen, followMs: FOLLOW_MS },
  })
  const turn = async () => {
    await clock.waitForTimer((t) => t.ms === FOLLOW_MS)
    clock.advance(FOLLOW_MS)
    await clock.waitForTimer((t) => t.ms === FOLLOW_MS) // the turn is over once it is armed again
  }

  // Another gateway announces a rescan while this one's directory is being swapped by a deploy.
  await appendFile(join(pluginDir, 'index.js'), '// changed\n')
  await rename(plugins, `${plugins}.swapping`)
  await repo.countRescan()
  await turn()
  expect(registry.plugin('echo')?.checksum).toBe(before)

  await rename(`${plugins}.swapping`, plugins)
  await turn()
  expect(registry.plugin('echo')?.checksum).not.toBe(before)
  expect(rolled).toEqual(['echo'])
  await catalog.close()
})
