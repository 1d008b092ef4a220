import { describe, expect, it } from 'vitest'
import { CliError, cliConfig, parseInvocation } from '../../src/cli/index.js'

const codeOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    return err instanceof CliError ? err.code : String(err)
  }
  return 'no error'
}

describe('CLI arguments', () => {
  it('parses --config pairs: k=v is a string, k:=json is a JSON value', () => {
    const { command } = parseInvocation([
      'enable',
      'acme',
      'hay-compat',
      '--config',
      'name=a=b',
      '--config',
      'retries:=5',
      '--config',
      'flags:={"x":true}',
      '--config',
      'empty=',
    ])
    expect(command).toEqual({
      name: 'enable',
      orgId: 'acme',
      pluginId: 'hay-compat',
      config: { name: 'a=b', retries: 5, flags: { x: true }, empty: '' },
    })
    expect(parseInvocation(['enable', 'acme', 'echo']).command).toMatchObject({ config: undefined })
  })

  it('refuses bad ids, arities, flags and JSON as usage errors', () => {
    for (const argv of [
      ['stop', 'acme'],
      ['stop', 'a', 'b', 'c'],
      ['refresh', '../x'],
      ['rescan', 'echo'],
      ['restart'],
      ['restart', '../x'],
      ['enable', 'acme', 'echo', '--config', 'k:=nope'],
      ['workers', '--config', 'a=b'],
      ['start', '--url', 'http://127.0.0.1:1'],
      ['start', '--json'],
      ['nope'],
    ]) {
      expect({ argv, code: codeOf(() => parseInvocation(argv)) }).toEqual({ argv, code: 'USAGE' })
    }
  })

  it('takes the gateway URL and token from flags, then GATEWAY_URL / ADMIN_TOKEN, then the default', () => {
    expect(cliConfig({}, {})).toEqual({ url: 'http://127.0.0.1:8787', token: undefined })
    expect(cliConfig({}, { GATEWAY_URL: 'https://gw.example/', ADMIN_TOKEN: 'env-token' })).toEqual({
      url: 'https://gw.example',
      token: 'env-token',
    })
    expect(
      cliConfig({ url: 'http://flag:1', token: 'flag-token' }, { GATEWAY_URL: 'https://gw.example', ADMIN_TOKEN: 'env-token' }),
    ).toEqual({
      url: 'http://flag:1',
      token: 'flag-token',
    })
    expect(() => cliConfig({}, { GATEWAY_URL: 'not a url' })).toThrow(/GATEWAY_URL must be an http\(s\) URL/)
  })
})
