import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { checksumPlugin, scanPlugins } from '../../src/catalog/index.js'
import type { CatalogEntry, ValidCatalogEntry } from '../../src/catalog/index.js'

async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pg-catalog-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function write(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, content)
}

/** Writes <root>/<name>/package.json (an object is serialised, a string written as is) and files. */
async function plugin(root: string, name: string, pkg: object | string, files: Record<string, string> = {}) {
  const dir = join(root, name)
  await write(join(dir, 'package.json'), typeof pkg === 'string' ? pkg : JSON.stringify(pkg, null, 2))
  for (const [rel, content] of Object.entries(files)) await write(join(dir, rel), content)
  return dir
}

const v2Package = (name = 'hay-plugin-echo') => ({
  name,
  version: '1.0.0',
  'hay-plugin': {
    entry: './dist/index.js',
    displayName: 'Echo',
    category: 'integration',
    capabilities: ['routes', 'config'],
    env: ['ECHO_API_BASE'],
  },
})

const built = { 'dist/index.js': 'export default 1\n', 'dist/lib/util.js': 'export const x = 1\n' }

function valid(entries: CatalogEntry[], id: string): ValidCatalogEntry {
  const e = entries.find((x) => x.id === id)
  if (!e?.ok) throw new Error(`expected a valid entry ${id}, got ${JSON.stringify(e)}`)
  return e
}

function invalidError(entries: CatalogEntry[], id: string): string {
  const e = entries.find((x) => x.id === id)
  if (!e || e.ok) throw new Error(`expected an invalid entry ${id}, got ${JSON.stringify(e)}`)
  return e.error
}

describe('scanPlugins: detection', () => {
  it('reads an SDK v2 plugin: entry only, metadata comes from the worker', async () => {
    const root = await tempRoot()
    const dir = await plugin(root, 'echo', v2Package(), built)

    const entries = await scanPlugins([root])
    expect(entries).toHaveLength(1)
    const entry = valid(entries, 'echo')
    expect(entry).toMatchObject({
      ok: true,
      id: 'echo',
      dir,
      name: 'hay-plugin-echo',
      version: '1.0.0',
      sdkVersion: 'v2',
      entryPath: join(dir, 'dist', 'index.js'),
      envAllowList: ['ECHO_API_BASE'],
      manifest: { entry: './dist/index.js', displayName: 'Echo', category: 'integration' },
    })
    expect(entry.legacyMetadata).toBeUndefined()
    expect(entry.checksum).toMatch(/^[0-9a-f]{64}$/)
  })

  it('reads a legacy v1 plugin and builds its metadata from the manifest', async () => {
    const root = await tempRoot()
    await plugin(
      root,
      'legacy',
      {
        name: '@hay/legacy-plugin',
        'hay-plugin': {
          entry: 'index.js',
          configSchema: { apiKey: { type: 'string', label: 'API key', required: true, encrypted: true } },
          auth: { type: 'apiKey', id: 'apiKey', label: 'API key', configField: 'apiKey' },
          routes: [{ method: 'post', path: '/webhook' }],
        },
      },
      { 'index.js': 'require("http")\n' },
    )

    const entry = valid(await scanPlugins([root]), 'legacy')
    expect(entry.sdkVersion).toBe('v1')
    expect(entry.version).toBe('0.0.0')
    expect(entry.envAllowList).toEqual([])
    expect(entry.legacyMetadata).toEqual({
      configSchema: { apiKey: { type: 'string', label: 'API key', required: true, encrypted: true } },
      authMethods: [{ type: 'apiKey', id: 'apiKey', label: 'API key', configField: 'apiKey' }],
      uiExtensions: [],
      pages: [],
      routes: [{ method: 'POST', path: '/webhook' }],
      mcp: { local: [], external: [] },
    })
  })

  it('treats an auth list without configSchema as legacy v1 too', async () => {
    const root = await tempRoot()
    await plugin(
      root,
      'oauth',
      {
        name: 'oauth',
        'hay-plugin': {
          entry: './index.js',
          auth: [
            { type: 'apiKey', id: 'key', label: 'Key' },
            { type: 'oauth2', id: 'oauth', label: 'OAuth', authorizationUrl: 'https://a', tokenUrl: 'https://t' },
          ],
        },
      },
      { 'index.js': '' },
    )
    const entry = valid(await scanPlugins([root]), 'oauth')
    expect(entry.sdkVersion).toBe('v1')
    expect(entry.legacyMetadata?.configSchema).toEqual({})
    expect(entry.legacyMetadata?.authMethods.map((a) => a.id)).toEqual(['key', 'oauth'])
  })

  it('scans one level deep, skipping files and hidden directories, sorted by id', async () => {
    const root = await tempRoot()
    await plugin(root, 'zeta', v2Package('zeta'), built)
    await plugin(root, 'alpha', v2Package('alpha'), built)
    await write(join(root, 'README.md'), '# plugins')
    await write(join(root, '.cache', 'package.json'), '{}')
    await plugin(join(root, 'alpha'), 'nested', v2Package('nested'), built)

    expect((await scanPlugins([root])).map((e) => e.id)).toEqual(['alpha', 'zeta'])
  })

  it('follows a symlinked plugin directory', async () => {
    const root = await tempRoot()
    const elsewhere = await tempRoot()
    const target = await plugin(elsewhere, 'real', v2Package(), built)
    await symlink(target, join(root, 'linked'))
    const entry = valid(await scanPlugins([root]), 'linked')
    expect(entry.dir).toBe(join(root, 'linked'))
  })

  it('fails with a coded error when a plugins directory cannot be read', async () => {
    const root = await tempRoot()
    await expect(scanPlugins([join(root, 'missing')])).rejects.toMatchObject({ code: 'INTERNAL' })
  })
})

describe('scanPlugins: invalid plugins are listed with their error', () => {
  it.each([
    ['bad JSON', '{ "name": "x", ', {}, /not valid JSON/],
    ['no hay-plugin block', { name: 'x', version: '1.0.0' }, {}, /no "hay-plugin" block/],
    ['no entry', { name: 'x', 'hay-plugin': { displayName: 'X' } }, {}, /entry is missing/],
    ['a missing entry file', { name: 'x', 'hay-plugin': { entry: './dist/index.js' } }, {}, /entry file .* not found/],
    ['an invalid manifest field', { name: 'x', 'hay-plugin': { entry: './i.js', category: 'toys' } }, { 'i.js': '' }, /category/],
    ['no package.json', undefined, { 'index.js': '' }, /package.json not found/],
  ])('rejects a plugin with %s', async (_case, pkg, files, error) => {
    const root = await tempRoot()
    if (pkg === undefined) {
      for (const [rel, content] of Object.entries(files)) await write(join(root, 'broken', rel), content)
    } else {
      await plugin(root, 'broken', pkg, files)
    }
    const entries = await scanPlugins([root])
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ ok: false, id: 'broken', dir: join(root, 'broken') })
    expect(invalidError(entries, 'broken')).toMatch(error)
  })

  it('rejects an entry that escapes the plugin directory with ../', async () => {
    const root = await tempRoot()
    await write(join(root, 'outside.js'), 'process.exit(1)\n')
    await plugin(root, 'escape', { name: 'x', 'hay-plugin': { entry: '../outside.js' } })
    expect(invalidError(await scanPlugins([root]), 'escape')).toMatch(/outside the plugin directory/)
  })

  it('rejects an entry that is a symlink leading out of the plugin directory', async () => {
    const root = await tempRoot()
    const elsewhere = await tempRoot()
    await write(join(elsewhere, 'evil.js'), '')
    const dir = await plugin(root, 'sneaky', { name: 'x', 'hay-plugin': { entry: './index.js' } })
    await symlink(join(elsewhere, 'evil.js'), join(dir, 'index.js'))
    expect(invalidError(await scanPlugins([root]), 'sneaky')).toMatch(/resolves outside the plugin directory/)
  })

  it('rejects a package.json that is a FIFO, a device or huge, without hanging or reading it all', async () => {
    const root = await tempRoot()
    await mkdir(join(root, 'fifo'))
    execFileSync('mkfifo', [join(root, 'fifo', 'package.json')]) // nobody ever writes to it
    await mkdir(join(root, 'device'))
    await symlink('/dev/zero', join(root, 'device', 'package.json'))
    await plugin(root, 'huge', `{"name":"x","pad":"${'x'.repeat(2 * 1024 * 1024)}"}`)
    await plugin(root, 'fine', v2Package(), built)
    const entries = await scanPlugins([root])
    expect(invalidError(entries, 'fifo')).toMatch(/not a regular file/)
    expect(invalidError(entries, 'device')).toMatch(/not a regular file/)
    expect(invalidError(entries, 'huge')).toMatch(/larger than 1048576 bytes/)
    expect(entries.find((e) => e.id === 'fine')?.ok).toBe(true)
  })

  it('rejects a directory whose name is not a valid plugin id', async () => {
    const root = await tempRoot()
    await plugin(root, 'Bad.Name', v2Package(), built)
    const entries = await scanPlugins([root])
    expect(entries).toEqual([
      { ok: false, id: 'Bad.Name', dir: join(root, 'Bad.Name'), error: expect.stringMatching(/not a valid plugin id/) },
    ])
  })

  it('rejects both plugins when two directories hold the same id', async () => {
    const first = await tempRoot()
    const second = await tempRoot()
    const a = await plugin(first, 'echo', v2Package(), built)
    const b = await plugin(second, 'echo', v2Package(), built)
    await plugin(second, 'other', v2Package('other'), built)

    const entries = await scanPlugins([first, second, first])
    const echoes = entries.filter((e) => e.id === 'echo')
    expect(echoes).toHaveLength(2)
    for (const e of echoes) {
      expect(e.ok).toBe(false)
      expect(!e.ok && e.error).toContain(a)
      expect(!e.ok && e.error).toContain(b)
    }
    expect(valid(entries, 'other').ok).toBe(true)
  })
})

describe('scanPlugins: checksum', () => {
  async function checksumOf(root: string, id = 'echo') {
    return valid(await scanPlugins([root]), id).checksum
  }

  it('is stable across scans', async () => {
    const root = await tempRoot()
    await plugin(root, 'echo', v2Package(), built)
    expect(await checksumOf(root)).toBe(await checksumOf(root))
  })

  it('changes when the entry file or another built file changes', async () => {
    const root = await tempRoot()
    const dir = await plugin(root, 'echo', v2Package(), built)
    const before = await checksumOf(root)

    await write(join(dir, 'dist', 'index.js'), 'export default 2\n')
    const afterEntry = await checksumOf(root)
    expect(afterEntry).not.toBe(before)

    await write(join(dir, 'dist', 'lib', 'util.js'), 'export const x = 2\n')
    expect(await checksumOf(root)).not.toBe(afterEntry)
  })

  it('changes when package.json changes', async () => {
    const root = await tempRoot()
    await plugin(root, 'echo', v2Package(), built)
    const before = await checksumOf(root)
    await plugin(root, 'echo', { ...v2Package(), version: '1.0.1' })
    expect(await checksumOf(root)).not.toBe(before)
  })

  it('ignores node_modules, dotfiles and files outside the entry directory', async () => {
    const root = await tempRoot()
    const dir = await plugin(root, 'echo', v2Package(), built)
    const before = await checksumOf(root)
    await write(join(dir, 'dist', 'node_modules', 'dep', 'index.js'), 'x')
    await write(join(dir, 'dist', '.DS_Store'), 'x')
    await write(join(dir, 'src', 'index.ts'), 'export default 1')
    expect(await checksumOf(root)).toBe(before)
  })

  it('ignores what a plugin writes beside its code at run time (logs, data), not a code file it adds', async () => {
    const root = await tempRoot()
    const dir = await plugin(root, 'echo', v2Package(), built)
    const before = await checksumOf(root)
    await write(join(dir, 'dist', 'app.log'), 'started\n')
    await write(join(dir, 'dist', 'logs', 'today.log'), 'started\n')
    await write(join(dir, 'dist', 'sessions.db'), 'x')
    expect(await checksumOf(root)).toBe(before)
    for (const file of ['more.js', 'more.mjs', 'more.cjs', 'more.json', 'more.ts', 'addon.node', 'lib.wasm', 'bin/run']) {
      const was = await checksumOf(root)
      await write(join(dir, 'dist', file), 'x')
      expect({ file, changed: (await checksumOf(root)) !== was }).toEqual({ file, changed: true })
    }
  })

  it('bounds the walk to a stable, sorted prefix of the files', async () => {
    const root = await tempRoot()
    const manifest = Buffer.from('{}')
    await write(join(root, 'a.js'), 'a')
    await write(join(root, 'b.js'), 'b')
    await write(join(root, 'c.js'), 'c')
    const bounded = await checksumPlugin(manifest, root, 2)
    expect(bounded).not.toBe(await checksumPlugin(manifest, root))

    await write(join(root, 'c.js'), 'changed past the bound')
    expect(await checksumPlugin(manifest, root, 2)).toBe(bounded)
    await write(join(root, 'a.js'), 'changed inside the bound')
    expect(await checksumPlugin(manifest, root, 2)).not.toBe(bounded)
  })
})
