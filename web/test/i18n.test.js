// One i18n system (src/i18n/): every language has every key and every plural form Intl.PluralRules asks for.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LANGUAGES, STRING_KEYS, pickLanguage, translator } from '../src/i18n/index.js';

const CATEGORIES = /\.(zero|one|two|few|many|other)$/;
const base = (key) => key.replace(CATEGORIES, '');

test('every key of every language exists in every other language', () => {
  const reference = Object.keys(LANGUAGES.en).sort();
  assert.ok(reference.length > 100);
  for (const [lang, table] of Object.entries(LANGUAGES)) {
    const keys = Object.keys(table).sort();
    assert.deepEqual(keys.filter((k) => !reference.includes(k)), [], `${lang} has keys English lacks`);
    assert.deepEqual(reference.filter((k) => !keys.includes(k)), [], `${lang} lacks keys`);
    for (const [key, text] of Object.entries(table)) assert.ok(typeof text === 'string' && text.trim(), `${lang} ${key}`);
  }
});

test('plural keys have every category the language uses for whole numbers', () => {
  for (const [lang, table] of Object.entries(LANGUAGES)) {
    const rules = new Intl.PluralRules(lang);
    const needed = new Set(Array.from({ length: 200 }, (_, n) => rules.select(n)));
    // A plural key has two forms or more ('error.other' alone is an ordinary key).
    const forms = Object.keys(table).filter((k) => CATEGORIES.test(k)).map(base);
    const plurals = new Set(forms.filter((b) => forms.indexOf(b) !== forms.lastIndexOf(b)));
    assert.ok(plurals.size >= 5, lang);
    for (const key of plurals) {
      for (const category of needed) assert.ok(Object.hasOwn(table, `${key}.${category}`), `${lang}: ${key}.${category}`);
    }
  }
});

test('placeholders are the same in every language', () => {
  const names = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const [lang, table] of Object.entries(LANGUAGES)) {
    for (const [key, text] of Object.entries(LANGUAGES.en)) {
      if (CATEGORIES.test(key)) continue;  // a plural form may spell the count out
      assert.deepEqual(names(table[key]), names(text), `${lang} ${key}`);
    }
  }
});

test('the translator picks plural forms by Intl.PluralRules, fills placeholders and falls back', () => {
  const en = translator('en-GB');
  assert.equal(en('reviewScreen.nImages', { count: 1 }), '1 image');
  assert.equal(en('reviewScreen.nImages', { count: 0 }), '0 images');
  assert.equal(en('reviewScreen.nImages', { count: 2 }), '2 images');
  const de = translator('de-CH');
  assert.equal(de('reviewScreen.nStudies', { count: 1 }), '1 Studie');
  assert.equal(de('reviewScreen.nStudies', { count: 3 }), '3 Studien');
  assert.equal(de('counts.files', { processed: 2, total: 5 }), '2 von 5 Dateien');
  assert.equal(de('counts.files', { processed: 2 }), '2 von {total} Dateien');  // a missing value stays visible
  assert.equal(translator('fr')('title'), LANGUAGES.en.title);
  assert.equal(de('no.such.key'), 'no.such.key');
  const custom = translator('de', { 'reviewScreen.title': 'Kontrolle' });
  assert.equal(custom('reviewScreen.title'), 'Kontrolle');
  assert.equal(pickLanguage('DE_at'), 'de');
  assert.equal(pickLanguage(''), 'en');
});

test('an override may name a plural key by its base or by a form', () => {
  assert.ok(STRING_KEYS.has('reviewScreen.nImages') && STRING_KEYS.has('reviewScreen.nImages.one'));
  assert.ok(STRING_KEYS.has('reviewScreen.reasons.duplicate'));
});
