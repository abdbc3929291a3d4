// Parsing and checking of <deid-uploader>'s settings (src/config.js): what a portal gives, what the element uses.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConfigError, OPTION_NAMES, coreConfig, resolveKey, resolveSettings } from '../src/config.js';

globalThis.location ??= { href: 'https://portal.example/visit/3' };  // relative endpoints resolve against the page

const settings = (values, configKeys = Object.keys(values)) => resolveSettings((name) => values[name], configKeys);

function configError(values, configKeys) {
  try {
    settings(values, configKeys);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err;
  }
  assert.fail('no ConfigError');
}

test('defaults: nothing given is a valid local configuration', () => {
  const s = settings({});
  assert.equal(s.pixels, 'auto');
  assert.equal(s.text, 'strict');
  assert.equal(s.review, 'never');
  assert.equal(s.ocr, 'on');
  assert.deepEqual(s.options, []);
  assert.deepEqual(s.trial, {});
  assert.equal(s.endpoint, undefined);
  assert.ok(Object.isFrozen(s));
});

test('values are normalised: sizes, words, modalities, endpoint', () => {
  const s = settings({ endpoint: 'https://dicomweb.example/dicomweb///', options: 'retain_uids, clean_descriptors',
    maxFileSize: '1.5 MB', maxBatchSize: '2GiB', modalities: 'ct mr', poolSize: '3', subjectId: 42,
    siteName: 'Site 017' });
  assert.equal(s.endpoint, 'https://dicomweb.example/dicomweb');
  assert.deepEqual(s.options, ['retain_uids', 'clean_descriptors']);
  assert.equal(s.maxFileSize, 1500000);
  assert.equal(s.maxBatchSize, 2 * 1024 ** 3);
  assert.deepEqual(s.modalities, ['CT', 'MR']);
  assert.equal(s.poolSize, 3);
  assert.deepEqual(s.trial, { subject_id: '42', site_name: 'Site 017' });
  assert.deepEqual(coreConfig(s), { options: ['retain_uids', 'clean_descriptors'],
    trial: { subject_id: '42', site_name: 'Site 017' }, pixels: 'auto', text: 'strict' });
  assert.equal(settings({ endpoint: '/dicomweb' }).endpoint, 'https://portal.example/dicomweb');
  assert.equal(settings({ endpoint: 'http://127.0.0.1:8042/dicomweb' }).endpoint, 'http://127.0.0.1:8042/dicomweb');
});

test('every wrong setting is named at once, never with the value of an identifier', () => {
  const err = configError({ endpont: 'x', pixels: 'bogus', maxFileSize: '-3 MB', tokenProvider: 'not a function',
    subjectId: 'line one\nline two', options: 'retain_uids retain_everything', modalities: 'C*T', poolSize: 17,
    endpoint: 'http://dicomweb.example' });
  assert.deepEqual(new Set(err.settings), new Set(['endpont', 'pixels', 'max-file-size', 'tokenProvider',
    'subject-id', 'options', 'modalities', 'pool-size', 'endpoint']));
  assert.match(err.message, /endpont is not a setting/);
  assert.match(err.message, /"retain_everything"/);
  assert.match(err.message, /endpoint must use https/);
  assert.doesNotMatch(err.message, /line one/);
});

test('endpoints carry no credentials, query or fragment', () => {
  for (const endpoint of ['https://user:pw@x.example/dw', 'https://x.example/dw?token=1', 'https://x.example/dw#a', 'https://']) {
    assert.deepEqual(configError({ endpoint }).settings, ['endpoint'], endpoint);
  }
});

test('require: a declared setting must be there; a provider stands for its value', () => {
  assert.deepEqual(configError({ require: 'subject-id token' }).settings, ['subject-id', 'token']);
  const s = settings({ require: 'subject-id token', subjectId: 'S1', tokenProvider: async () => 't' });
  assert.deepEqual(s.require, ['subjectId', 'token']);
  assert.deepEqual(configError({ require: 'subject-id no-such' }).settings, ['require']);
});

test('string overrides: only known keys and text', () => {
  assert.deepEqual(settings({ strings: { title: 'Upload', 'reviewScreen.title': 'Check' } }).strings,
    { title: 'Upload', 'reviewScreen.title': 'Check' });
  assert.deepEqual(configError({ strings: { 'no.such.key': 'x' } }).settings, ['strings']);
  assert.deepEqual(configError({ strings: { title: { html: '<b>' } } }).settings, ['strings']);
});

test('the option names are the PS3.15 options in snake_case', () => {
  assert.ok(OPTION_NAMES.length >= 12);
  for (const name of OPTION_NAMES) assert.match(name, /^(retain|clean)_[a-z_]+$/);
});

test('pseudonym keys: hex or bytes of at least 16 bytes; the provider is awaited and its failure is named', async () => {
  assert.equal(settings({ pseudonymKey: '5eed'.repeat(8) }).pseudonymKey.length, 16);
  assert.deepEqual(configError({ pseudonymKey: 'abcd' }).settings, ['pseudonym-key']);
  assert.deepEqual(configError({ pseudonymKey: 'zz'.repeat(16) }).settings, ['pseudonym-key']);
  const bytes = new Uint8Array(20).fill(7);
  const fromProvider = await resolveKey(settings({ pseudonymKeyProvider: async () => bytes }));
  assert.deepEqual([...fromProvider.key], [...bytes]);
  assert.equal(fromProvider.session, false);
  await assert.rejects(resolveKey(settings({ pseudonymKeyProvider: async () => { throw new Error('vault down'); } })),
    (err) => err instanceof ConfigError && !err.message.includes('vault down'));
  await assert.rejects(resolveKey(settings({ pseudonymKeyProvider: () => new Promise(() => {}) }), 20),
    (err) => err instanceof ConfigError && /in time/.test(err.message));
  await assert.rejects(resolveKey(settings({ pseudonymKeyProvider: async () => 'abc' })),
    (err) => err.settings[0] === 'pseudonymKeyProvider');
});
