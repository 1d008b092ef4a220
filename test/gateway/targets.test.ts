import { appendFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { scanPlugins } from '../../src/catalog/index.js'
import { createTargets } from '../../src/gateway/index.js'
import { copyPlugin, EXAMPLES_DIR, tempDir } from '../helpers/gateway.js'
import { registryWithHeldReads } from '../helpers/held-reads.js'

// A request reads its target, then (a cache miss) its instance from the database: a rescan or an
// instance write may finish meanwhile. Its worker must be started for the catalog as it is then, not as it was.
describe('Targets during a rescan or an instance write', () => {
  async function setUp() {
    const plugins = join(await tempDir(), 'plugins')
    const pluginDir = await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    const { registry, held } = await registryWithHeldReads()
    await registry.load(await scanPlugins([plugins]))
    return { plugins, pluginDir, registry, held, targets: createTargets(registry) }
  }

  it('a target read across a rescan that changed its plugin is the changed plugin', async () => {
    const { plugins, pluginDir, registry, held, targets } = await setUp()
    const before = registry.plugin('echo')?.checksum
    const reading = targets.target('acme', 'echo', { requireEnabled: true })
    await held.readDone
    await appendFile(join(pluginDir, 'index.js'), '// changed\n')
    expect(await registry.load(await scanPlugins([plugins]))).toMatchObject({ changed: ['echo'] })
    held.release()
    const { view } = await reading
    expect(view.checksum).not.toBe(before)
    expect(view).toBe(registry.plugin('echo'))
  })

  it('a target read across a disable of its instance is refused as disabled: no worker for it', async () => {
    const { registry, held, targets } = await setUp()
    const reading = targets.target('acme', 'echo', { requireEnabled: true })
    await held.readDone
    await registry.saveInstance('acme', 'echo', { enabled: false })
    held.release()
    await expect(reading).rejects.toMatchObject({ code: 'INSTANCE_DISABLED' })
  })

  it('a target read across a rescan that removed its plugin is refused as not found', async () => {
    const { plugins, pluginDir, registry, held, targets } = await setUp()
    const reading = targets.target('acme', 'echo', { requireEnabled: true })
    await held.readDone
    await rm(pluginDir, { recursive: true })
    expect(await registry.load(await scanPlugins([plugins]))).toMatchObject({ removed: ['echo'] })
    held.release()
    await expect(reading).rejects.toMatchObject({ code: 'PLUGIN_NOT_FOUND' })
  })
})
